import Dispatch

/// A fetch target whose pages are held: a fetch of ``url(_:)`` waits until the test calls
/// ``release(_:)``, so that a `fetch_url` job runs exactly as long as the test needs, however
/// loaded the machine. It listens on 127.0.0.2 (allow it with `--allow-cidr 127.0.0.2/32`).
final class HeldFetchTarget: Sendable {
    private let server: FetchTargetServer
    private let gates: [String: DispatchSemaphore]

    init(pages names: [String]) throws {
        let gates = Dictionary(uniqueKeysWithValues: names.map { ($0, DispatchSemaphore(value: 0)) })
        self.gates = gates
        server = try FetchTargetServer { request in
            let name = String(request.path.split(separator: "/").last ?? "")
            gates[name]?.wait()
            return (.zero, .page(status: 200, body: Array("released \(name)".utf8)))
        }
    }

    /// The URL of the held page `name`.
    func url(_ name: String) -> String { "\(server.url)/held/\(name)" }

    /// Fetches received so far, each held until released.
    var requestCount: Int { server.requestCount }

    /// Lets the fetch of page `name` be answered.
    func release(_ name: String) { gates[name]?.signal() }

    /// Releases every page, so that no held connection outlives the test, and stops listening.
    func stop() {
        for gate in gates.values { gate.signal() }
        server.stop()
    }
}
