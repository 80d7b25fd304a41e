import Foundation
import GRDB
import JobCore
import Testing
@testable import SQLiteStore

/// The SQLite store answers every question as `MemoryJobStore`, the reference semantics, does:
/// the same changes go to both, and every answer is compared.
@Suite("SQLite store queries match the memory store")
struct StoreQueryTests {
    /// Jobs of three owners and two kinds through every state, some sharing a creation time,
    /// some with webhooks (delivered, failed, pending, none yet) and idempotency keys.
    struct Scenario {
        var jobs: [JobRecord] = []
        var changes: [StoreChange] = []
        var finishTimes: [Date] = []

        init() {
            let owners: [String?] = [nil, "tenant-a", "tenant-b"]
            let kinds = ["write_code", "fetch_url"]
            for index in 0..<60 {
                // Every third job shares its creation time with the one before: the id breaks the tie.
                let created = epoch.addingTimeInterval(Double(index - index / 3))
                let webhook = index % 4 == 1 ? WebhookTarget(url: "https://example.com/hook/\(index)", key: [UInt8(index), 7]) : nil
                let idempotency = index % 5 == 0
                    ? IdempotencyRecord(key: "key-\(index % 20)", fingerprint: "f\(index)", expiresAt: epoch.addingTimeInterval(3600),
                                        webhookSecretGenerated: index % 2 == 0)
                    : nil
                jobs.append(makeJob(kind: kinds[index % 2], status: index % 7 == 0 ? .scheduled : .queued,
                                    owner: owners[index % 3], createdAt: created, webhook: webhook, idempotency: idempotency,
                                    name: "job \(index)"))
            }
            // Submitted in batches of one to four, as a group commit would see them.
            var next = 0
            while next < jobs.count {
                let size = 1 + next % 4
                changes.append(.submitted(Array(jobs[next..<min(jobs.count, next + size)])))
                next += size
            }
            var clock = epoch.addingTimeInterval(1000)
            func tick() -> Date {
                clock = clock.addingTimeInterval(1.5)
                return clock
            }
            for (index, job) in jobs.enumerated() {
                let key = job.key
                switch index % 6 {
                case 0: // still waiting
                    break
                case 1: // succeeded, with its webhook event if it has one
                    let started = tick()
                    changes.append(.started(key, attempt: 1, at: started))
                    let event = job.webhook.map {
                        WebhookEventRecord(jobID: job.id, webhookID: "msg_\(index)", url: $0.url, key: $0.key, body: Array("{\"n\":\(index)}".utf8))
                    }
                    let at = tick()
                    finishTimes.append(at)
                    changes.append(.finished(key, attempt: 1, startedAt: started, status: .succeeded, result: .integer(index),
                                             error: nil, at: at, event: event))
                case 2: // failed after a retry
                    let started = tick()
                    let failure = JobFailure(code: "http_status", message: "503", status: 503)
                    changes.append(.started(key, attempt: 1, at: started))
                    changes.append(.retrying(key, attempt: 1, startedAt: started, error: failure, at: tick(), nextAttemptAt: tick()))
                    let restarted = tick()
                    changes.append(.started(key, attempt: 2, at: restarted))
                    let at = tick()
                    finishTimes.append(at)
                    changes.append(.finished(key, attempt: 2, startedAt: restarted, status: .failed, result: nil, error: failure,
                                             at: at, event: nil))
                case 3: // running
                    changes.append(.started(key, attempt: 1, at: tick()))
                case 4: // cancelled before it ran
                    let at = tick()
                    finishTimes.append(at)
                    changes.append(.finished(key, attempt: 1, startedAt: nil, status: .cancelled, result: nil, error: .cancelled,
                                             at: at, event: nil))
                default: // waiting for a retry, then requeued by a drain
                    let started = tick()
                    changes.append(.started(key, attempt: 1, at: started))
                    changes.append(.retrying(key, attempt: 1, startedAt: started, error: JobFailure(code: "timeout", message: "slow"),
                                             at: tick(), nextAttemptAt: tick()))
                    if index % 12 == 5 { changes.append(.requeued(key, attempt: 2, interrupted: nil)) }
                }
            }
            // Webhook deliveries: delivered, failed, and one still pending with attempts.
            let withEvents = jobs.enumerated().filter { $0.offset % 6 == 1 && $0.element.webhook != nil }.map(\.element)
            for (order, job) in withEvents.enumerated() {
                let attempt = DeliveryAttempt(number: 1, startedAt: tick(), duration: .milliseconds(12), status: 500, error: nil,
                                              nextAttemptAt: nil)
                let state: WebhookState = [.delivered, .failed, .pending][order % 3]
                changes.append(.webhookAttempted(job.id, attempt: attempt, state: state, nextAttemptAt: state == .pending ? tick() : nil))
                if order == 4 { changes.append(.webhookRedelivered(job.id, roundStart: 1)) } // failed, then sent again
            }
            // Stale writes that both stores must ignore.
            if let finished = jobs.indices.first(where: { $0 % 6 == 1 }).map({ jobs[$0] }) {
                changes.append(.finished(finished.key, attempt: 1, startedAt: nil, status: .failed, result: nil, error: .interrupted,
                                         at: tick(), event: nil))
            }
        }
    }

    private static let filters: [JobFilter] = {
        var filters: [JobFilter] = [JobFilter()]
        for owner in [nil, "tenant-a", "tenant-b", "nobody"] as [String?] {
            for status in [nil] + JobState.allCases.map(Optional.some) {
                for kind in [nil, "write_code", "fetch_url"] as [String?] {
                    filters.append(JobFilter(status: status, kind: kind, owner: owner))
                }
            }
        }
        filters.append(JobFilter(createdFrom: epoch.addingTimeInterval(10)))
        filters.append(JobFilter(createdBefore: epoch.addingTimeInterval(25)))
        filters.append(JobFilter(createdFrom: epoch.addingTimeInterval(5.5), createdBefore: epoch.addingTimeInterval(30.25)))
        filters.append(JobFilter(status: .queued, owner: "tenant-a", createdFrom: epoch.addingTimeInterval(3), createdBefore: epoch.addingTimeInterval(33)))
        filters.append(JobFilter(kind: "fetch_url", createdBefore: epoch.addingTimeInterval(12)))
        // Far beyond what microseconds in an Int64 hold: clamped, never a trap.
        filters.append(JobFilter(createdFrom: Date(timeIntervalSince1970: -1e300), createdBefore: Date(timeIntervalSince1970: 1e300)))
        filters.append(JobFilter(createdFrom: Date(timeIntervalSince1970: 1e300)))
        return filters
    }()

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
        for filter in Self.filters {
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
        let byID = try queryPlan(store.database, "SELECT * FROM jobs WHERE id = ?", ["x"])
        #expect(byID.contains("jobs_by_id"), "\(byID)")
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

    private static func describe(_ event: WebhookEventRecord) -> String {
        "\(event.jobID) \(event.webhookID) \(event.url) \(event.key) \(event.body) \(event.state) \(event.roundStart) \(String(describing: event.nextAttemptAt)) \(event.attempts)"
    }
}
