import Foundation
import GRDB
import JobCore
import StoreTestSupport
import Testing
@testable import SQLiteStore

/// The SQLite store answers every question as `MemoryJobStore`, the reference semantics, does:
/// the same changes go to both, and every answer is compared.
@Suite("SQLite store queries match the memory store")
struct StoreQueryTests {
    typealias Scenario = StoreScenario

    private func bothStores() throws -> (TemporaryStore, SQLiteJobStore, MemoryJobStore, Scenario) {
        let scenario = Scenario()
        let file = TemporaryStore()
        let sqlite = try file.open()
        let memory = MemoryJobStore()
        for change in scenario.changes {
            try write(sqlite, change).get()
            try write(memory, change).get()
        }
        return (file, sqlite, memory, scenario)
    }

    @Test("a job by ID, with its webhook's state and attempts")
    func jobByID() throws {
        let (_, sqlite, memory, scenario) = try bothStores()
        defer { sqlite.close() }
        for job in scenario.jobs {
            let stored = try #require(try sqlite.job(withID: job.id))
            #expect(stored == (try memory.job(withID: job.id)), "job \(job.input)")
        }
        #expect(try sqlite.job(withID: JobID()) == nil)
        let unfinished = try scenario.jobs.filter { job in try job.webhook != nil && memory.webhookEvent(of: job.id) == nil }
        #expect(!unfinished.isEmpty)
        for job in unfinished {
            #expect(try sqlite.job(withID: job.id)?.webhookStatus == WebhookStatus(url: job.webhook!.url, state: .pending, attempts: 0),
                    "a webhook with no event yet shows pending")
        }
    }

    @Test("pages of every filter, walked with several page sizes, newest first with no gap or repeat")
    func pages() throws {
        let (_, sqlite, memory, _) = try bothStores()
        defer { sqlite.close() }
        var nonEmpty = 0
        for filter in StoreScenario.filters {
            for limit in [1, 3, 7, 100] {
                var cursor: JobCursor?
                var walked: [JobID] = []
                for _ in 0..<100 {
                    let page = try sqlite.jobs(matching: filter, limit: limit, after: cursor)
                    let expected = try memory.jobs(matching: filter, limit: limit, after: cursor)
                    #expect(page == expected, "filter \(filter), limit \(limit), after \(String(describing: cursor))")
                    guard let last = page.last, page.count == limit else {
                        walked += page.map(\.record.id)
                        break
                    }
                    walked += page.map(\.record.id)
                    cursor = JobKey(id: last.record.id, createdAt: last.record.createdAt)
                }
                #expect(Set(walked).count == walked.count, "no repeats")
                if limit == 100, !walked.isEmpty { nonEmpty += 1 }
            }
        }
        #expect(nonEmpty >= 30, "the filters select something")
        #expect(try sqlite.jobs(matching: JobFilter(), limit: 0, after: nil).isEmpty)
    }

    @Test("a cursor between two jobs of the same time, and a range that ends before the cursor")
    func cursorEdges() throws {
        let (_, sqlite, memory, scenario) = try bothStores()
        defer { sqlite.close() }
        for job in scenario.jobs {
            for filter in [JobFilter(), JobFilter(createdBefore: job.createdAt), JobFilter(createdBefore: job.createdAt.addingTimeInterval(2)),
                           JobFilter(createdFrom: job.createdAt)] {
                #expect(try sqlite.jobs(matching: filter, limit: 5, after: job.key) == (try memory.jobs(matching: filter, limit: 5, after: job.key)))
            }
        }
    }

    @Test("idempotency keys by owner, webhook events with attempts, expired jobs, and what a start reads")
    func otherQueries() throws {
        let (_, sqlite, memory, scenario) = try bothStores()
        defer { sqlite.close() }
        for owner in [nil, "tenant-a", "tenant-b"] as [String?] {
            for key in stride(from: 0, to: 20, by: 5).map({ "key-\($0)" }) {
                for now in [epoch, epoch.addingTimeInterval(3599), epoch.addingTimeInterval(3600)] {
                    let found = try sqlite.job(idempotencyKey: key, owner: owner, now: now)
                    #expect(found == (try memory.job(idempotencyKey: key, owner: owner, now: now)), "\(key) of \(owner ?? "none")")
                }
            }
        }
        #expect(try sqlite.job(idempotencyKey: "key-0", owner: nil, now: epoch) != nil, "the scenario has keys")

        for job in scenario.jobs {
            let event = try sqlite.webhookEvent(of: job.id)
            let expected = try memory.webhookEvent(of: job.id)
            #expect(event.map(Self.describe) == expected.map(Self.describe))
        }

        for cutoff in [epoch] + scenario.finishTimes + [Date.distantFuture] {
            for limit in [1, 4, 1000] {
                let expired = try sqlite.expiredJobs(finishedBefore: cutoff, limit: limit)
                #expect(expired == (try memory.expiredJobs(finishedBefore: cutoff, limit: limit)), "before \(cutoff), limit \(limit)")
            }
        }

        let start = try sqlite.loadUnfinished()
        let reference = try memory.loadUnfinished()
        #expect(start.jobs == reference.jobs)
        #expect(start.counts == reference.counts)
        #expect(start.webhookEvents.map(Self.describe).sorted() == reference.webhookEvents.map(Self.describe).sorted())
        #expect(start.webhookEvents.count == 2, "one event is still pending, one pending again after a redelivery")
        #expect(scenario.jobs.filter { try! sqlite.webhookEvent(of: $0.id) != nil }.count == 5, "five jobs have events")
        #expect(sqlite.lastStartRowsRead == reference.jobs.count)
    }

    @Test("every list filter seeks through an index; none scans the table or sorts")
    func listPlans() throws {
        let file = TemporaryStore()
        let store = try file.open()
        defer { store.close() }
        let cursor = JobKey(id: JobID(), createdAt: epoch)
        // Without a filter or a cursor the page is the primary key read backwards from its end,
        // which SQLite calls a scan; the LIMIT stops it after one page.
        let unfiltered = try queryPlan(store.database, JobListQuery(filter: JobFilter(), limit: 100, after: nil).sql, [100])
        #expect(unfiltered.hasPrefix("SCAN j\n") && !unfiltered.contains("TEMP B-TREE"), "\(unfiltered)")
        let expectations: [(JobFilter, String)] = [
            (JobFilter(), "PRIMARY KEY"),
            (JobFilter(createdFrom: epoch, createdBefore: epoch.addingTimeInterval(9)), "PRIMARY KEY"),
            (JobFilter(status: .failed), "jobs_by_status"),
            (JobFilter(status: .failed, kind: "write_code"), "jobs_by_status"),
            (JobFilter(status: .failed, createdFrom: epoch), "jobs_by_status"),
            (JobFilter(kind: "fetch_url"), "jobs_by_kind"),
            (JobFilter(owner: "tenant-a"), "jobs_by_owner "),
            (JobFilter(kind: "fetch_url", owner: "tenant-a"), "jobs_by_owner "),
            (JobFilter(status: .queued, owner: "tenant-a"), "jobs_by_owner_status"),
            (JobFilter(status: .queued, kind: "write_code", owner: "tenant-a", createdBefore: epoch), "jobs_by_owner_status"),
        ]
        for (filter, index) in expectations {
            for after in filter == JobFilter() ? [cursor] : [nil, cursor] {
                let query = JobListQuery(filter: filter, limit: 100, after: after)
                let plan = try queryPlan(store.database, query.sql, query.arguments)
                let first = plan.split(separator: "\n").first.map(String.init) ?? ""
                #expect(first.hasPrefix("SEARCH j USING") && (first + " ").contains(index), "\(filter): \(plan)")
                #expect(!plan.contains("SCAN j") && !plan.contains("TEMP B-TREE"), "\(filter): \(plan)")
            }
        }
        let onTime = try queryPlan(store.database, SQLiteJobStore.jobByIDOnTimeSQL, [1000, 2000, "x"])
        #expect(onTime.contains("SEARCH j USING PRIMARY KEY (created_at>? AND created_at<?)"), "\(onTime)")
        let offTime = try queryPlan(store.database, SQLiteJobStore.jobByIDOffTimeSQL, ["x"])
        #expect(offTime.contains("SEARCH j USING INDEX jobs_by_id_off_time (id=?)"), "\(offTime)")
        let event = try queryPlan(store.database, """
            SELECT e.*, j.webhook_key FROM webhook_events e
            LEFT JOIN jobs j ON j.created_at = e.job_created_at AND j.id = e.job_id WHERE e.job_id = ?
            """, ["x"])
        #expect(!event.contains("SCAN"), "\(event)")
        let expired = try queryPlan(store.database, """
            SELECT created_at, id, owner, kind, status FROM jobs
            WHERE finished_at IS NOT NULL AND finished_at < ?
              AND NOT EXISTS (SELECT 1 FROM webhook_events e WHERE e.job_id = jobs.id AND e.state = 'pending')
            ORDER BY finished_at, created_at, id LIMIT ?
            """, [1, 10])
        #expect(expired.contains("jobs_by_finished") && !expired.contains("TEMP B-TREE"), "\(expired)")
        let idempotency = try queryPlan(store.database, """
            SELECT * FROM jobs j WHERE coalesce(j.owner, '') = ? AND j.idempotency_key = ? AND j.idempotency_retired = 0
              AND j.idempotency_expires_at > ?
            """, ["", "k", 1])
        #expect(idempotency.contains("jobs_by_idempotency_key"), "\(idempotency)")
    }

    @Test("a job is found by ID whether or not its ID carries its creation time, and only the latter skip the ID index")
    func jobByIDOnAndOffTime() throws {
        let file = TemporaryStore()
        let store = try file.open()
        defer { store.close() }
        let created = Date(timeIntervalSince1970: 1_800_000_000.123456)
        let webhook = WebhookTarget(url: "http://127.0.0.1:9/hook", key: Array(repeating: 7, count: 32))
        // As the server makes them: a UUIDv7 of the creation time. And as a test or an older
        // version may write them: an ID whose time says nothing of `created_at`.
        var onTime = makeJob(createdAt: created, webhook: webhook)
        onTime.id = JobID(now: created)
        let offTime = makeJob(createdAt: created.addingTimeInterval(0.000001), webhook: webhook)
        #expect(StoredRows.idOnTime(onTime.id, createdAt: StoredRows.micros(onTime.createdAt)))
        #expect(!StoredRows.idOnTime(offTime.id, createdAt: StoredRows.micros(offTime.createdAt)))
        try write(store, .submitted([onTime, offTime])).get()
        for job in [onTime, offTime] {
            let event = WebhookEventRecord(jobID: job.id, webhookID: "msg_\(job.id)", url: webhook.url, key: webhook.key, body: Array("{}".utf8))
            try write(store, .finished(job.key, attempt: 1, startedAt: nil, status: .succeeded, result: .integer(1), error: nil,
                                       at: created.addingTimeInterval(1), event: event, owner: job.owner, kind: job.kind)).get()
            let found = try #require(try store.job(withID: job.id))
            #expect(found.record.id == job.id && found.record.status == .succeeded)
            #expect(found.webhookStatus?.state == .pending)
            let stored = try #require(try store.webhookEvent(of: job.id))
            #expect(stored.key == webhook.key, "the event's join finds its job's secret")
        }
        let indexed = try store.database.read { db in
            try String.fetchAll(db, sql: "SELECT id FROM jobs INDEXED BY jobs_by_id_off_time WHERE id_on_time = 0")
        }
        #expect(indexed == [offTime.id.description], "only the ID that does not carry its time is indexed")
        #expect(try store.job(withID: JobID(now: created)) == nil, "an unknown ID of the same millisecond")
        #expect(try store.loadUnfinished().webhookEvents.map(\.key) == [webhook.key, webhook.key], "a start joins events to their jobs")
    }

    private static func describe(_ event: WebhookEventRecord) -> String {
        "\(event.jobID) \(event.webhookID) \(event.url) \(event.key) \(event.body) \(event.state) \(event.roundStart) \(String(describing: event.nextAttemptAt)) \(event.attempts)"
    }
}
