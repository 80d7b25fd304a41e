import Foundation

/// Where a client command writes: JSON documents or human text on standard output, messages
/// on standard error. `FileHandle` writes at once, unbuffered, so `watch`'s lines appear as
/// events arrive.
struct Output {
    /// Print the API's JSON, unchanged, one document per line, instead of text for a person.
    let json: Bool

    /// One line of text.
    func line(_ text: String) {
        FileHandle.standardOutput.write(Data((text + "\n").utf8))
    }

    /// A JSON document as the server sent it, on one line (the server writes compact JSON;
    /// only the trailing newline, if any, is replaced).
    func document(_ bytes: some Collection<UInt8>) {
        var text = Array(bytes)
        while let last = text.last, last == UInt8(ascii: "\n") || last == UInt8(ascii: "\r") { text.removeLast() }
        text.append(UInt8(ascii: "\n"))
        FileHandle.standardOutput.write(Data(text))
    }

    /// A job: its JSON, or its short description.
    func job(_ response: JobpoolClient.Response) {
        if json {
            document(response.body)
        } else {
            line(JobText.describe(response.object ?? [:]))
        }
    }

    /// `jobpool: message` on standard error.
    static func error(_ message: String) {
        FileHandle.standardError.write(Data("jobpool: \(message)\n".utf8))
    }
}
