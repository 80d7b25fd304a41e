import Foundation
import PostgresTestSupport
import Testing

/// `jobpool serve` as an operator meets it: bad flags are refused with `serve`'s own usage and
/// a message, never a trap, and the start says which store it opened.
@Suite("jobpool serve's flags")
struct ServeCommandTests {
    @Test("a bad value is refused with jobpool serve's usage and exit code 64", arguments: [
        (["--port", "70000"], "--port must be 0 to 65535"),
        (["--store", "postgres"], "is not 'memory', 'sqlite:PATH' or a postgres:// URI"),
        (["--api-key", "short"], "at least 16 characters"),
        (["--host", "999.1.1.1"], "is not an IP address or a host name"),
        (["--host", "bad host!"], "is not an IP address or a host name"),
        (["--retention", "99999999999999d"], "--retention: '99999999999999d' is not a duration from 1s to 3650d"),
        (["--retention", "1e300s"], "--retention"),
        (["--idempotency-ttl", "9999999999h"], "--idempotency-ttl"),
        (["--shutdown-grace", "9223372036854775807"], "--shutdown-grace must be 0 to 3600"),
        (["--priority-aging-seconds", "9223372036854775807"], "--priority-aging-seconds must be 1 to 86400"),
        (["--webhook-timeout", "9223372036854775807"], "--webhook-timeout must be 1 to 600"),
        (["--max-body-bytes", "9223372036854775807"], "--max-body-bytes must be 1024 to"),
        (["--max-connections", "100", "--max-waiters", "50"], "--max-waiters (50) must be at most 45% of --max-connections (100)"),
        (["--heartbeat-seconds", "5", "--lease-seconds", "14"], "--lease-seconds (14) must be at least 3 times --heartbeat-seconds (5)"),
        (["--heartbeat-seconds", "0"], "--heartbeat-seconds must be 1 to 3600"),
        (["--workers", "1025"], "--workers must be 0 to 1024"),
        (["--workers", "0"], "With --store memory nobody would run the jobs"),
        (["--workers", "0", "--store", "sqlite:/nonexistent-jobpool/jobs.sqlite"], "With --store sqlite nobody would run the jobs"),
    ])
    func refusedFlags(arguments: [String], message: String) throws {
        let process = try JobpoolProcess(["serve", "--store", "memory", "--port", "0"] + arguments)
        defer { process.stop() }
        let status = process.waitForExit(timeout: .seconds(10))
        #expect(status == 64, "exit code \(String(describing: status)): \(process.log)")
        #expect(process.log.contains(message), "\(process.log)")
        #expect(process.log.contains("Usage: jobpool serve"), "the usage shown is serve's: \(process.log)")
        #expect(!process.log.contains("Fatal error"), "\(process.log)")
    }

    @Test("--workers 0 with a PostgreSQL store: the node serves the API, accepts jobs and runs none",
          .enabled(if: PostgresTestCluster.isAvailable, Comment(rawValue: PostgresTestCluster.skipMessage)))
    func apiOnlyNode() async throws {
        let url = try PostgresTestCluster.shared().makeDatabase()
        let process = try JobpoolProcess(["serve", "--port", "0", "--store", url, "--workers", "0"])
        defer { process.stop() }
        let client = TestHTTPClient(baseURL: "http://127.0.0.1:\(try process.waitUntilListening())")
        let submitted = try await client.submitWriteCode()
        #expect(submitted.status == 202)
        let id = try #require(submitted.json["id"] as? String)
        let stats = try await client.get("/v1/stats").json
        #expect(stats["workers"] as? Int == 0, "\(stats)")
        // Nothing claims it here: after the claimer's poll (about a second) it is still queued.
        let waited = try await client.get("/v1/jobs/\(id)?wait=2").json
        #expect(waited["status"] as? String == "queued")
    }

    @Test("the start logs the store's kind and absolute path")
    func logsTheStore() throws {
        let folder = temporaryFolder(prefix: "jobpool-serve").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let process = try JobpoolProcess(["serve", "--port", "0", "--store", "sqlite:jobs.sqlite"], directory: folder)
        defer { process.stop() }
        _ = try process.waitUntilListening()
        #expect(process.log.contains("store=sqlite:\(folder)/jobs.sqlite"), "\(process.log)")
    }
}
