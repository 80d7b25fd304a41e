import Foundation
import Testing

/// `jobpool watch` through a server restart: the stream breaks, and the client resumes it with
/// `Last-Event-ID` on the new process.
@Suite("jobpool watch across a restart")
struct ClientWatchResumeTests {
    @Test("a stream broken by a restart is resumed with Last-Event-ID: the job is followed to the end, no state twice")
    func resumesAcrossRestart() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("jobpool-watch-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = "sqlite:\(folder)/jobs.sqlite"
        // No grace: the running job is interrupted at once, and runs again after the restart.
        let first = try JobpoolProcess(["serve", "--port", "0", "--store", store, "--shutdown-grace", "0"])
        defer { first.stop() }
        let port = try first.waitUntilListening()
        let url = "http://127.0.0.1:\(port)"
        let submitted = try await ClientRun.run(["submit", "-q", "write_code", "--input", #"{"name":"r","min_seconds":3,"max_seconds":3}"#, "--url", url])
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

        let run = try await watched
        #expect(run.status == 0, "\(run.output)")
        #expect(run.documents.map { $0?["status"] as? String } == ["running", "succeeded"], "\(run.stdout)")
        #expect(second.log.contains("route=/v1/jobs/{id}/events status=200"), "the stream was resumed on the new process: \(second.log)")
    }
}
