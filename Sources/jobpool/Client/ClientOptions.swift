import ArgumentParser
import Foundation
import OutboundHTTP

/// The options every client command shares: which server, which API key, which output.
struct ClientOptions: ParsableArguments {
    @Option(help: "The server. (env: JOBPOOL_URL, default: http://127.0.0.1:8080)")
    var url: String?

    @Option(help: ArgumentHelp(
        "The API key. An argument shows in `ps` to every user of this machine: prefer --api-key-file or JOBPOOL_API_KEY, which win over it.",
        valueName: "key"))
    var apiKey: String?

    @Option(help: ArgumentHelp("A file holding the API key (its first line that is not empty or a '#' comment).", valueName: "path"))
    var apiKeyFile: String?

    @Flag(help: "Print the API's JSON, one document per line (the default when standard output is not a terminal).")
    var json = false

    static let defaultURL = "http://127.0.0.1:8080"

    /// Refuses a bad URL or key before any command runs, with the command's usage (exit 64).
    func validate() throws {
        _ = try serverURL()
        _ = try key()
    }

    /// The server URL, without a trailing slash: --url, else JOBPOOL_URL, else the default.
    func serverURL(_ environment: Environment = Environment()) throws -> String {
        let text = try environment.optional(url, "JOBPOOL_URL") ?? Self.defaultURL
        guard OutboundURL(text) != nil else {
            throw ValidationError("--url (or JOBPOOL_URL): '\(text.prefix(200))' is not an absolute http or https URL, such as \(Self.defaultURL).")
        }
        return text.hasSuffix("/") ? String(text.dropLast()) : text
    }

    /// The API key: --api-key-file, else JOBPOOL_API_KEY, else --api-key; nil without one.
    /// Messages never include the key.
    func key(_ environment: Environment = Environment()) throws -> String? {
        let key: String?
        if let apiKeyFile {
            guard let text = try? String(contentsOfFile: apiKeyFile, encoding: .utf8) else {
                throw ValidationError("--api-key-file: cannot read \(apiKeyFile).")
            }
            key = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
                .first { !$0.isEmpty && !$0.hasPrefix("#") }
            guard key != nil else { throw ValidationError("--api-key-file: \(apiKeyFile) holds no key.") }
        } else {
            key = try environment.optional(nil as String?, "JOBPOOL_API_KEY") ?? apiKey
        }
        if let key, !key.unicodeScalars.allSatisfy({ (0x21...0x7E).contains($0.value) }) {
            throw ValidationError("The API key holds a space, a control character or a non-ASCII character; check where it came from.")
        }
        return key
    }

    /// JSON, unless standard output is a terminal and --json was not given.
    var printsJSON: Bool { json || isatty(STDOUT_FILENO) == 0 }

    func makeClient() throws -> JobpoolClient {
        JobpoolClient(server: try serverURL(), apiKey: try key())
    }
}
