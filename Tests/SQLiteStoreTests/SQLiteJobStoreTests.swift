import Foundation
import GRDB
import JobCore
import StoreTestSupport
import Logging
import Synchronization
import Testing
@testable import SQLiteStore

@Suite("SQLite job store: files, pragmas, round trips")
struct SQLiteJobStoreTests {
    private let logger = Logger(label: "test")

    private func temporaryPath() -> String {
        TemporaryFolders.sqlitePath(prefix: "jobpool-store")
    }

    @Test("WAL, and synchronous=FULL on the writer although GRDB's pool sets NORMAL; the file is private (0600)")
    func pragmas() throws {
        let path = temporaryPath()
        let store = try SQLiteJobStore(path: path, logger: logger)
        store.start()
        defer { store.close() }
        // Read on the writer connection: a reader's setting is SQLite's default, and says
        // nothing about how commits are synced.
        let (mode, synchronous) = try store.database.writeWithoutTransaction { db in
            (try String.fetchOne(db, sql: "PRAGMA journal_mode"), try Int.fetchOne(db, sql: "PRAGMA synchronous"))
        }
        #expect(mode == "wal")
        #expect(synchronous == 2, "2 is FULL; GRDB's DatabasePool leaves 1 (NORMAL)")
        let permissions = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(permissions == 0o600)
    }

    @Test("options, schedules, idempotency keys and retry waits round-trip; a batch is stored whole")
    func optionsAndRetries() throws {
        let path = temporaryPath()
        let created = Date(timeIntervalSince1970: 1_795_000_000.5)
        let due = Date(timeIntervalSince1970: 1_795_000_100.25)
        let key = IdempotencyRecord(key: "order-42", fingerprint: "ab12", expiresAt: Date(timeIntervalSince1970: 1_795_086_400),
                                    webhookSecretGenerated: true)
        let options = JobOptions(maxAttempts: 4, priority: -3, timeLimitSeconds: 2.5, idempotency: key)
        let scheduled = JobRecord(id: JobID(), kind: "write_code", input: .object(["name": .string("a")]), status: .scheduled,
                                  createdAt: created, nextAttemptAt: due, options: options)
        let retried = JobRecord(id: JobID(), kind: "fetch_url", input: .object(["url": .string("http://x/")]), status: .queued,
                                createdAt: created.addingTimeInterval(1))
        let retryKey = JobKey(id: retried.id, createdAt: retried.createdAt)
        let failure = JobFailure(code: "http_status", message: "503", status: 503, isRetryable: true)
        do {
            let store = try SQLiteJobStore(path: path, logger: logger)
            store.start()
            defer { store.close() }
            try write(store, .submitted([scheduled, retried]))
            try write(store, .started(retryKey, attempt: 1, at: created))
            try write(store, .retrying(retryKey, attempt: 1, startedAt: created, error: failure, at: created, nextAttemptAt: due))
            // A stale retry of an attempt that is no longer current changes nothing.
            try write(store, .retrying(retryKey, attempt: 1, startedAt: created, error: failure, at: created, nextAttemptAt: created))
        }
        let store = try SQLiteJobStore(path: path, logger: logger)
        store.start()
        defer { store.close() }
        let jobs = try store.loadUnfinished().jobs
        #expect(jobs.count == 2)
        let first = try #require(jobs.first { $0.id == scheduled.id })
        #expect(first.status == .scheduled)
        #expect(first.nextAttemptAt == due)
        #expect(first.options == options)
        let second = try #require(jobs.first { $0.id == retried.id })
        #expect(second.status == .scheduled)
        #expect(second.attempt == 2)
        #expect(second.nextAttemptAt == due)
        #expect(second.error?.code == "http_status")
        #expect(second.error?.status == 503)
        let outcomes = try store.database.read { db in
            try String.fetchAll(db, sql: "SELECT outcome || ':' || error_code FROM job_attempts WHERE job_id = ?", arguments: [retried.id.description])
        }
        #expect(outcomes == ["failed:http_status"])
    }

    @Test("jobs, attempts and webhook events round-trip; a stale attempt cannot overwrite a newer one")
    func roundTrip() throws {
        let path = temporaryPath()
        let id = JobID()
        let created = Date(timeIntervalSince1970: 1_795_000_000.123456)
        let key = JobKey(id: id, createdAt: created)
        do {
            let store = try SQLiteJobStore(path: path, logger: logger)
            store.start()
            defer { store.close() }
            try write(store, .submitted([JobRecord(
                id: id, kind: "write_code", input: .object(["name": .string("alex")]), status: .queued,
                createdAt: created, webhook: WebhookTarget(url: "https://example.com/h", key: [1, 2, 3]))]))
            try write(store, .started(key, attempt: 1, at: created))
            try write(store, .requeued(key, attempt: 2, interrupted: (attempt: 1, startedAt: created)))
            try write(store, .started(key, attempt: 2, at: created))
            let event = WebhookEventRecord(jobID: id, webhookID: "msg_1", url: "https://example.com/h", key: [1, 2, 3], body: Array("{}".utf8))
            try write(store, .finished(key, attempt: 2, startedAt: created, status: .succeeded, result: .integer(7), error: nil,
                                       at: created, event: event, owner: nil, kind: "write_code"))
            // A stale attempt 1 finishing late changes nothing.
            try write(store, .finished(key, attempt: 1, startedAt: created, status: .failed, result: nil, error: .interrupted,
                                       at: created, event: nil, owner: nil, kind: "write_code"))
            let attempt = DeliveryAttempt(number: 1, startedAt: created, duration: .milliseconds(12), status: 500, error: nil,
                                          nextAttemptAt: created.addingTimeInterval(5))
            try write(store, .webhookAttempted(id, attempt: attempt, state: .pending, nextAttemptAt: attempt.nextAttemptAt))
            let outcomes = try store.database.read { db in
                try String.fetchAll(db, sql: "SELECT outcome FROM job_attempts WHERE job_id = ? ORDER BY attempt", arguments: [id.description])
            }
            #expect(outcomes == ["interrupted", "succeeded"], "one terminal result in the attempt history")
        }
        let reopened = try SQLiteJobStore(path: path, logger: logger)
        reopened.start()
        defer { reopened.close() }
        let stored = try reopened.loadUnfinished()
        #expect(stored.jobs.isEmpty, "a finished job is not read at start")
        let job = try #require(try reopened.job(withID: id)?.record)
        #expect(job.id == id)
        #expect(job.status == .succeeded)
        #expect(job.result == .integer(7))
        #expect(job.attempt == 2)
        #expect(job.createdAt == created, "microsecond timestamps round-trip exactly")
        #expect(job.webhook?.key == [1, 2, 3])
        let event = try #require(stored.webhookEvents.first)
        #expect(event.webhookID == "msg_1")
        #expect(event.body == Array("{}".utf8))
        #expect(event.state == .pending)
        #expect(event.attempts.map(\.status) == [500])
        #expect(try reopened.webhookEvent(of: id)?.attempts.map(\.status) == [500])
        try write(reopened, .purged([key]))
        #expect(try reopened.job(withID: id) == nil)
        #expect(try reopened.webhookEvent(of: id) == nil)
        #expect(try reopened.loadUnfinished().webhookEvents.isEmpty)
    }

    @Test("a file that is not a database stops the start, and is left untouched")
    func corruptFile() throws {
        let path = temporaryPath()
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let garbage = Data((0..<8192).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        try garbage.write(to: URL(fileURLWithPath: path))
        #expect {
            _ = try SQLiteJobStore(path: path, logger: logger)
        } throws: { error in
            "\(error)".contains("not a SQLite database") || "\(error)".contains("damaged")
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == garbage)
    }

    @Test("a file from a newer jobpool stops the start with a clear message")
    func newerFile() throws {
        let path = temporaryPath()
        try SQLiteJobStore(path: path, logger: logger).close()
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        let database = try DatabaseQueue(path: path, configuration: configuration)
        try database.write { db in try db.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v99-from-the-future')") }
        #expect {
            _ = try SQLiteJobStore(path: path, logger: logger)
        } throws: { error in
            "\(error)".contains("newer jobpool")
        }
    }

    @Test("a file from an older jobpool is backed up, then migrated forward")
    func olderFile() throws {
        let path = temporaryPath()
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let old = try DatabaseQueue(path: path)
        try SQLiteJobStore.makeMigrator().migrate(old, upTo: "v1")
        try old.close()
        let store = try SQLiteJobStore(path: path, logger: logger)
        store.start()
        defer { store.close() }
        let folder = (path as NSString).deletingLastPathComponent
        let backups = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.contains(".backup-v1-") }
        #expect(backups.count == 1)
        let indexes = try store.database.read { db in
            try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'index' AND name = 'jobs_by_status'")
        }
        #expect(indexes == ["jobs_by_status"])
    }
}
