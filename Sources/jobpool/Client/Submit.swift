import ArgumentParser
import Foundation

/// `jobpool submit KIND`: `POST /v1/jobs`; with `--wait`, `submit(...).result(timeout)`.
struct Submit: ClientCommand {
    static let configuration = CommandConfiguration(
        abstract: "Submit a job; print its ID, or with --wait the finished job.",
        discussion: "Example: jobpool submit write_code --input '{\"name\":\"alex\"}' --wait 10\n\n" + ExitStatus.help)

    @Argument(help: "The job's kind: write_code or fetch_url.")
    var kind: String

    @Argument(help: ArgumentHelp("'-' reads the input JSON from standard input.", valueName: "-"))
    var standardInput: String?

    @Option(help: ArgumentHelp("The job's input, as JSON. (default: {})", valueName: "json"))
    var input: String?

    @Option(help: ArgumentHelp("A file holding the input JSON.", valueName: "path"))
    var inputFile: String?

    @Option(help: ArgumentHelp("Wait up to this many seconds for the job to finish, then exit by its final state.", valueName: "seconds"))
    var wait: Int?

    @Option(help: ArgumentHelp("A URL the server calls back (a signed webhook) when the job finishes.", valueName: "url"))
    var webhook: String?

    @Option(help: ArgumentHelp("Makes a retried submit safe: the same key and body return the first job and create nothing.", valueName: "key"))
    var idempotencyKey: String?

    @Option(help: "-10 to 10; higher runs first.")
    var priority: Int?

    @Option(help: ArgumentHelp("Run the job this many seconds from now.", valueName: "seconds"))
    var delay: Double?

    @Flag(name: .shortAndLong, help: "Print only the job's ID, also when standard output is not a terminal.")
    var quiet = false

    @OptionGroup var connection: ClientOptions

    func validate() throws {
        if let standardInput, standardInput != "-" {
            throw ValidationError("Unexpected argument '\(standardInput.prefix(80))': the input goes in --input, --input-file or '-' (standard input).")
        }
        guard [input != nil, inputFile != nil, standardInput != nil].filter({ $0 }).count <= 1 else {
            throw ValidationError("Give the input one way: --input, --input-file or '-'.")
        }
        if let wait, wait < 0 { throw ValidationError("--wait must be 0 or more seconds.") }
        if let delay, !delay.isFinite || delay < 0 { throw ValidationError("--delay must be 0 or more seconds.") }
        if let idempotencyKey, idempotencyKey.isEmpty || !idempotencyKey.unicodeScalars.allSatisfy({ (0x21...0x7E).contains($0.value) }) {
            throw ValidationError("--idempotency-key must be visible ASCII characters, with no spaces.")
        }
    }

    func execute(_ client: JobpoolClient, _ output: Output) throws -> ExitStatus {
        var headers: [(name: String, value: String)] = []
        if let idempotencyKey { headers.append((name: "Idempotency-Key", value: idempotencyKey)) }
        let firstWait = min(wait ?? 0, JobpoolClient.longestWait)
        if wait != nil { headers.append((name: "Prefer", value: "wait=\(firstWait)")) }
        let deadline = wait.map { ContinuousClock.now + .seconds($0) }
        let response = try client.send("POST", "/v1/jobs", body: try body(), headers: headers,
                                       timeout: .seconds(firstWait + 30))
        let id = response.object?["id"] as? String ?? ""
        if quiet {
            output.line(id)
        } else if wait == nil {
            output.json ? output.document(response.body) : output.line(JobText.describe(response.object ?? [:]))
        }
        guard let deadline else { return .success }
        let final = response.isFinished ? response : try client.waitForJob(id, until: deadline)
        return quiet ? ExitStatus.finished(final.jobStatus) ?? .timedOut : final.finish(output)
    }

    /// The submission: the input as the user wrote it (checked to be one JSON value), with the
    /// options around it.
    private func body() throws -> [UInt8] {
        let text = try inputText().trimmingCharacters(in: .whitespacesAndNewlines)
        guard (try? JSONSerialization.jsonObject(with: Data(text.utf8), options: .fragmentsAllowed)) != nil else {
            throw ClientError(status: .usage, message: "the input is not JSON: \(text.prefix(200))")
        }
        var members = ["\"kind\":\(Self.jsonString(kind))", "\"input\":\(text)"]
        if let priority { members.append("\"priority\":\(priority)") }
        if let delay { members.append("\"delay_seconds\":\(delay)") }
        if let webhook { members.append("\"webhook\":{\"url\":\(Self.jsonString(webhook))}") }
        return Array("{\(members.joined(separator: ","))}".utf8)
    }

    private func inputText() throws -> String {
        if let input { return input }
        if let inputFile {
            guard let text = try? String(contentsOfFile: inputFile, encoding: .utf8) else {
                throw ClientError(status: .usage, message: "--input-file: cannot read \(inputFile).")
            }
            return text
        }
        if standardInput != nil {
            return String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
        }
        return "{}"
    }

    private static func jsonString(_ text: String) -> String {
        let data = try? JSONSerialization.data(withJSONObject: text, options: [.fragmentsAllowed, .withoutEscapingSlashes])
        return data.map { String(decoding: $0, as: UTF8.self) } ?? "\"\""
    }
}
