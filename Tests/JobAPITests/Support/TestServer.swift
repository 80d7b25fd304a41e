import Foundation
import JobpoolApp
import Logging
import PostgresTestSupport

/// A real jobpool server on 127.0.0.1, port 0, for one test. Always call ``stop()`` (use
/// `defer`), so its threads and listener go away on every path.
final class TestServer: Sendable {
    let server: JobpoolServer
    let port: Int
    let echoPort: Int?
    let client: TestHTTPClient
    private let ownsStore: Bool

    init(_ configure: (inout ServerConfiguration) -> Void = { _ in }) throws {
        var configuration = ServerConfiguration()
        configuration.host = "127.0.0.1"
        configuration.port = 0
        // Short: stop() blocks its (cooperative) test thread for up to the grace period.
        configuration.shutdownGrace = .milliseconds(300)
        // Every API test runs against the store JOBPOOL_TEST_STORE names (memory unless set):
        // Tests/run.sh runs the suite once per store. A test that needs one store sets it.
        StoreKind.underTest.apply(to: &configuration)
        let madeHere = configuration.store
        configure(&configuration)
        // A database made for this server alone goes when it stops; one the test chose (to
        // restart a server on it, say) stays.
        ownsStore = configuration.store == madeHere
        var logger = Logger(label: "jobpool-test")
        logger.logLevel = .warning
        server = try JobpoolServer(configuration: configuration, logger: logger)
        let ports = try server.start()
        port = ports.http
        echoPort = ports.echo
        client = TestHTTPClient(baseURL: "http://127.0.0.1:\(ports.http)")
    }

    /// Stops the server; a PostgreSQL test database goes with it, so that a run of the whole
    /// suite does not fill the disk with hundreds of them.
    func stop() {
        server.shutdown()
        if ownsStore, case .postgres(let url) = server.configuration.store, let cluster = try? PostgresTestCluster.shared() {
            cluster.dropDatabase(url: url)
        }
    }
}

/// Polls `condition` until it holds or `timeout` passes. Returns whether it held.
///
/// Declared `throws` even for a condition that cannot throw: `#expect` adds `try` to any
/// expression with `await`, and with `rethrows` a non-throwing call made that `try` a warning.
func eventually(timeout: Duration = .seconds(10), _ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return try await condition()
}
