import Foundation
import JobCore
import SQLiteStore
import Testing
import Logging

/// One process per store, and a start that fails leaves the store alone. These run the real
/// `jobpool` binary: the lock is between processes.
@Suite("One owner per store", .serialized)
struct StoreOwnershipTests {
    private static func temporaryStore() -> String {
        temporarySQLitePath(prefix: "jobpool-owner")
    }

    /// Starts `jobpool serve` on the store and submits a job lasting `seconds`; returns once it runs.
    private static func serveWithRunningJob(path: String, seconds: Double) async throws -> (JobpoolProcess, TestHTTPClient, String) {
        let process = try JobpoolProcess(["serve", "--port", "0", "--store", "sqlite:\(path)"])
        do {
            let client = TestHTTPClient(baseURL: "http://127.0.0.1:\(try process.waitUntilListening())")
            let id = try #require(try await client.submitWriteCode(min: seconds, max: seconds).json["id"] as? String)
            #expect(try await eventually { try await client.get("/v1/jobs/\(id)").json["status"] as? String == "running" })
            return (process, client, id)
        } catch {
            process.stop()
            throw error
        }
    }

    @Test("a second process on the same store exits at once, naming the file and the holder's PID; the first runs its job once")
    func secondProcessIsRefused() async throws {
        let path = Self.temporaryStore()
        // A long job, so that it surely still runs when the second process starts, however slow
        // the machine; it is cancelled at the end.
        let (first, client, id) = try await Self.serveWithRunningJob(path: path, seconds: 60)
        defer { first.stop() }

        let second = try JobpoolProcess(["serve", "--port", "0", "--store", "sqlite:\(path)"])
        defer { second.stop() }
        let status = second.waitForExit(timeout: .seconds(10))
        #expect(status != nil && status != 0, "the second process must exit non-zero at once")
        #expect(second.log.contains(path), "the message names the store: \(second.log)")
        #expect(second.log.contains("jobpool process \(first.pid),"), "the message names the PID holding it: \(second.log)")
        #expect(!second.log.contains("listening"))

        #expect(try await client.get("/v1/jobs/\(id)").json["status"] as? String == "running", "still the first process's")
        let final = try await client.post("/v1/jobs/\(id)/cancel").json
        #expect(final["status"] as? String == "cancelled")
        #expect(final["attempt"] as? Int == 1, "the job ran once, in the first process only")
    }

    @Test("a start that fails to bind leaves the store untouched: no job is re-queued")
    func failedStartTouchesNothing() async throws {
        let path = Self.temporaryStore()
        // A store with a job that was running when its process died.
        let (crashed, client, id) = try await Self.serveWithRunningJob(path: path, seconds: 60)
        defer { crashed.stop() }
        // The store writes in order and acknowledges a submission after its commit, so once
        // this one is acknowledged, the first job's start is on disk too.
        #expect(try await client.submitWriteCode(min: 60, max: 60).status == 202)
        crashed.send(SIGKILL)
        _ = crashed.waitForExit(timeout: .seconds(10))

        // A port in use: this start fails with "Address already in use".
        let holder = try TestServer()
        defer { holder.stop() }
        let refused = try JobpoolProcess(["serve", "--port", "\(holder.port)", "--store", "sqlite:\(path)"])
        defer { refused.stop() }
        let status = refused.waitForExit(timeout: .seconds(10))
        #expect(status != nil && status != 0)
        #expect(refused.log.contains("Address already in use"), "\(refused.log)")

        let store = try SQLiteJobStore(path: path, logger: Logger(label: "test"))

        store.start()
        let stored = try store.job(withID: try #require(JobID(id)))?.record
        store.close()
        #expect(stored?.status == .running, "the failed start re-queued the job (\(String(describing: stored?.status)))")
        #expect(stored?.attempt == 1, "the failed start spent an attempt (\(String(describing: stored?.attempt)))")
    }

    @Test("a store file that this user may not write stops the start, saying permission denied and naming the owner")
    func unwritableStoreIsRefused() throws {
        let path = Self.temporaryStore()
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        let store = try SQLiteJobStore(path: path, logger: Logger(label: "test"))
        store.start()
        store.close()
        let asRoot = getuid() == 0
        // Root ignores file modes, so as root the server runs as `nobody` (setpriv, util-linux).
        let nobody: UInt32 = 65_534
        let launcher = asRoot ? ["setpriv", "--reuid=\(nobody)", "--regid=\(nobody)", "--clear-groups", "--"] : []
        if asRoot {
            #expect(chown(folder, nobody, nobody) == 0)
            for file in try FileManager.default.contentsOfDirectory(atPath: folder) {
                #expect(chown("\(folder)/\(file)", nobody, nobody) == 0)
            }
        }
        #expect(chmod(path, 0o444) == 0)
        let process = try JobpoolProcess(["serve", "--port", "0", "--store", "sqlite:\(path)"], launcher: launcher)
        defer { process.stop() }
        let status = process.waitForExit(timeout: .seconds(10))
        #expect(status != nil && status != 0, "a read-only store must stop the start: \(process.log)")
        #expect(!process.log.contains("listening"))
        #expect(process.log.contains("permission denied"), "\(process.log)")
        #expect(process.log.contains(path), "\(process.log)")
        #expect(process.log.contains("mode 0444"), "\(process.log)")
        #expect(!process.log.contains("backup"), "no talk of backups for a permission problem: \(process.log)")
        if asRoot {
            #expect(process.log.contains("owned by nobody"), "\(process.log)")
            // A file of another user's, which this one may not even read.
            #expect(chown(path, 0, 0) == 0 && chmod(path, 0o600) == 0)
            let other = try JobpoolProcess(["serve", "--port", "0", "--store", "sqlite:\(path)"], launcher: launcher)
            defer { other.stop() }
            #expect(other.waitForExit(timeout: .seconds(10)) ?? 0 != 0)
            #expect(other.log.contains("permission denied") && other.log.contains("owned by root"), "\(other.log)")
        } else {
            #expect(process.log.contains("owned by \(NSUserName())"), "\(process.log)")
        }
    }
}
