import Foundation
import Testing

/// `jobpool watch` through a server restart: the stream breaks, and the client resumes it with
/// `Last-Event-ID` on the new process.
@Suite("jobpool watch across a restart")
struct ClientWatchResumeTests {
    @Test("a stream broken by a restart is resumed with Last-Event-ID: the job is followed to its end, no state twice")
    func resumesAcrossRestart() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("jobpool-watch-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = "sqlite:\(folder)/jobs.sqlite"
        // No grace: the running job is interrupted at once, and runs again after the restart. It
        // is long, so that it is still running on either side of the restart however slow the
        // machine; the test ends it with a cancel.
        let first = try JobpoolProcess(["serve", "--port", "0", "--store", store, "--shutdown-grace", "0"])
        defer { first.stop() }
        let port = try first.waitUntilListening()
        let url = "http://127.0.0.1:\(port)"
        let submitted = try await ClientRun.run(["submit", "-q", "write_code", "--input", #"{"name":"r","min_seconds":60,"max_seconds":60}"#, "--url", url])
        let id = try #require(submitted.lines.first, "\(submitted.output)")
        let oracle = TestHTTPClient(baseURL: url)
        #expect(try await eventually { try await oracle.get("/v1/jobs/\(id)").json["status"] as? String == "running" })

        async let watched = ClientRun.run(["watch", id, "--url", url])
        // The access log shows the stream once its reply has started.
        #expect(try await eventually { first.log.contains("route=/v1/jobs/{id}/events status=200") }, "\(first.log)")
        first.stop()
        let second = try JobpoolProcess(["serve", "--port", "\(port)", "--store", store])
        defer { second.stop() }
        _ = try second.waitUntilListening()
        #expect(try await eventually { second.log.contains("route=/v1/jobs/{id}/events status=200") },
                "the stream is resumed on the new process: \(second.log)")
        #expect(try await oracle.post("/v1/jobs/\(id)/cancel").status == 200)

        let run = try await watched
        #expect(run.status == 0, "\(run.output)")
        // The state before the restart, then only what came after: the resumed stream does not
        // repeat `running` (nor the `queued` of the recovery, which comes before it).
        #expect(run.documents.map { $0?["status"] as? String } == ["running", "cancelled"], "\(run.stdout)")
    }
}
