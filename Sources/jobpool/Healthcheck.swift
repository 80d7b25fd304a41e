import ArgumentParser
import Foundation
import OutboundHTTP

/// `jobpool healthcheck`: asks a running server's `/healthz` and exits 0 if it answers 200.
/// Container images use it as their HEALTHCHECK, so they need no curl.
struct Healthcheck: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Exit 0 if the local server answers /healthz with 200, else 1.")

    @Option(help: "The URL to check. (default: http://127.0.0.1:$JOBPOOL_PORT/healthz, port 8080)")
    var url: String?

    @Option(help: "Seconds to wait for the answer.")
    var timeout: Int = 3

    func run() throws {
        let port = ProcessInfo.processInfo.environment["JOBPOOL_PORT"].flatMap(Int.init) ?? 8080
        let target = url ?? "http://127.0.0.1:\(port)/healthz"
        guard OutboundURL(target) != nil else { throw ValidationError("--url must be an absolute http URL.") }
        // The server checks itself over loopback, which the fetch policy would refuse.
        let client = OutboundHTTPClient(configuration: .namedServer(userAgent: "jobpool-healthcheck"))
        let request = OutboundRequest(url: target, timeout: .seconds(max(1, timeout)), maxBytes: 64 * 1024,
                                      followRedirects: false)
        switch client.perform(request) {
        case .success(let response) where response.status == 200:
            return
        case .success(let response):
            FileHandle.standardError.write(Data("healthcheck: \(target) answered \(response.status)\n".utf8))
        case .failure(let failure):
            FileHandle.standardError.write(Data("healthcheck: \(target): \(failure.message)\n".utf8))
        }
        throw ExitCode(1)
    }
}
