import Dispatch
import Foundation
import JobCore
import Postgres
import StoreTestSupport
import Synchronization
import Testing
@testable import PostgresStore

/// Webhook events held by one node at a time, and retention on one node at a time: two stores
/// on one database stand for two nodes.
@Suite("PostgreSQL webhook claims and retention across nodes", .needsPostgres)
struct PostgresDeliveryClaimTests {
    /// Heartbeats far apart: a test moves the leases itself, with SQL.
    static let lease = NodeLeaseSettings(heartbeat: .seconds(60), lease: .seconds(180))
    static let target = WebhookTarget(url: "https://example.com/hook", key: [1, 2, 3])

    private struct Nodes {
        var database: TestDatabase
        var a: PostgresJobStore
        var b: PostgresJobStore
        var connection: PostgresConnection

        func close() {
            a.close()
            b.close()
            connection.close()
            withExtendedLifetime(database) {}
        }
    }

    private func twoNodes() throws -> Nodes {
        let database = try TestDatabase()
        return Nodes(database: database, a: try database.open(lease: Self.lease), b: try database.open(lease: Self.lease),
                     connection: try database.connection())
    }

    /// A job with a webhook that `node` ran and finished: its event is written with the final
    /// state, held by `node`.
    private func finishedWithEvent(on node: PostgresJobStore, webhookID: String = "msg_1", maxAttempts: Int = 3,
                                   finish: Bool = true) throws -> JobRecord {
        var job = makeJob(createdAt: epoch, webhook: Self.target)
        job.options.maxAttempts = maxAttempts
        try write(node, .submitted([job])).get()
        try write(node, .started(job.key, attempt: 1, at: epoch)).get()
        guard finish else { return job }
        let event = WebhookEventRecord(jobID: job.id, webhookID: webhookID, url: Self.target.url, key: Self.target.key,
                                       body: Array(#"{"type":"job.succeeded"}"#.utf8))
        try write(node, .finished(job.key, attempt: 1, startedAt: epoch, status: .succeeded, result: .integer(1), error: nil,
                                  at: epoch, event: event, owner: job.owner, kind: job.kind)).get()
        return job
    }

    private func attempt(_ number: Int, status: Int, retry: Bool) -> StoreChange.Attempted {
        // Due at once: the schedule's next attempt in the past, by any clock.
        let next = retry ? Date().addingTimeInterval(-1) : nil
        return StoreChange.Attempted(attempt: DeliveryAttempt(number: number, startedAt: Date(), duration: .milliseconds(3), status: status,
                                                              error: nil, nextAttemptAt: next),
                                     state: retry ? .pending : .delivered, next: next)
    }

    private func expireLease(of store: PostgresJobStore, on connection: PostgresConnection) throws {
        let nodeID = try #require(store.cluster?.nodeID)
        #expect(try connection.execute("UPDATE nodes SET lease_until = now() - interval '1 second' WHERE id = $1::uuid", [nodeID]) == 1)
    }

    private func holder(of job: JobRecord, _ connection: PostgresConnection) throws -> String? {
        try connection.query("SELECT node::text AS node FROM webhook_events WHERE job_id = $1::uuid", [job.id.description])
            .first?.optionalString("node")
    }

    @Test("an event held by node A is not claimed by node B; once A's lease expired, the sweep releases it and B claims it with the same webhook-id, body and attempts; A's late attempt write is refused")
    func claimAfterLeaseExpiry() throws {
        let nodes = try twoNodes()
        defer { nodes.close() }
        let job = try finishedWithEvent(on: nodes.a)
        #expect(try holder(of: job, nodes.connection) == nodes.a.cluster?.nodeID, "the finishing transaction claims the event for A")
        let first = attempt(1, status: 500, retry: true)
        try write(nodes.a, first.change(job.id)).get()
        #expect(try nodes.b.claimWebhookEvents(limit: 10).isEmpty, "A holds it, under a live lease: B takes nothing")
        #expect(try nodes.b.rescueExpired(on: nodes.connection).isEmpty)
        #expect(try nodes.b.claimWebhookEvents(limit: 10).isEmpty, "a sweep leaves a live node's events alone")

        try expireLease(of: nodes.a, on: nodes.connection)
        #expect(try writeIsStale(nodes.a, attempt(2, status: 500, retry: true).change(job.id)),
                "A's lease expired: its attempt write is refused before any sweep")
        _ = try nodes.b.rescueExpired(on: nodes.connection)
        #expect(try holder(of: job, nodes.connection) == nil, "the sweep released it")
        let claimed = try nodes.b.claimWebhookEvents(limit: 10)
        #expect(claimed.map(\.jobID) == [job.id])
        let event = try #require(claimed.first)
        #expect(event.webhookID == "msg_1", "the same webhook-id on every node")
        #expect(event.body == Array(#"{"type":"job.succeeded"}"#.utf8), "the same frozen body")
        #expect(event.key == Self.target.key)
        #expect(event.attempts.map(\.status) == [500], "the schedule resumes after A's attempt")
        #expect(try holder(of: job, nodes.connection) == nodes.b.cluster?.nodeID)
        #expect(try nodes.b.claimWebhookEvents(limit: 10).isEmpty, "claimed once")

        #expect(try writeIsStale(nodes.a, attempt(2, status: 200, retry: false).change(job.id)), "A no longer holds it")
        try write(nodes.b, attempt(2, status: 200, retry: false).change(job.id)).get()
        let stored = try #require(try nodes.b.webhookEvent(of: job.id))
        #expect(stored.state == .delivered)
        #expect(stored.attempts.map(\.status) == [500, 200], "A's refused write left no attempt row")
    }

    @Test("a starting node loads no pending event of another live node; the holder's own start-up read has it")
    func startLoadsOwnEventsOnly() throws {
        let nodes = try twoNodes()
        defer { nodes.close() }
        let job = try finishedWithEvent(on: nodes.a)
        let late = try nodes.database.open(lease: Self.lease)
        defer { late.close() }
        #expect(try late.loadUnfinished().webhookEvents.isEmpty, "A's pending event is A's to send")
        #expect(try late.claimWebhookEvents(limit: 10).isEmpty)
        #expect(try nodes.a.loadUnfinished().webhookEvents.map(\.jobID) == [job.id])
    }

    @Test("a redelivery on node B moves the event to B in the same write; A's writes are refused from then on")
    func redeliveryClaims() throws {
        let nodes = try twoNodes()
        defer { nodes.close() }
        let job = try finishedWithEvent(on: nodes.a)
        try write(nodes.a, attempt(1, status: 200, retry: false).change(job.id)).get()
        try write(nodes.b, .webhookRedelivered(job.id, roundStart: 1)).get()
        #expect(try holder(of: job, nodes.connection) == nodes.b.cluster?.nodeID)
        #expect(try nodes.b.webhookEvent(of: job.id)?.state == .pending)
        #expect(try writeIsStale(nodes.a, attempt(2, status: 200, retry: false).change(job.id)))
        try write(nodes.b, attempt(2, status: 200, retry: false).change(job.id)).get()
        #expect(try nodes.b.webhookEvent(of: job.id)?.attempts.count == 2)
    }

    @Test("a clean stop releases the node's pending events, and another node claims them at once")
    func cleanStopReleases() throws {
        let nodes = try twoNodes()
        defer { nodes.close() }
        let job = try finishedWithEvent(on: nodes.a)
        nodes.a.close()
        #expect(try holder(of: job, nodes.connection) == nil)
        #expect(try nodes.b.claimWebhookEvents(limit: 10).map(\.jobID) == [job.id])
    }

    @Test("a job the rescue fails gets its webhook event, unclaimed and without a body; the first body any live node stores is the one every node sends")
    func rescueFailedJobHasEvent() throws {
        let nodes = try twoNodes()
        defer { nodes.close() }
        let job = try finishedWithEvent(on: nodes.a, maxAttempts: 1, finish: false)
        try expireLease(of: nodes.a, on: nodes.connection)
        #expect(try nodes.b.rescueExpired(on: nodes.connection).map(\.status) == [.failed])
        let event = try #require(try nodes.b.claimWebhookEvents(limit: 10).first)
        #expect(event.jobID == job.id)
        #expect(event.body.isEmpty, "rendered by the claiming node, which has the HTTP layer's renderer")
        #expect(event.webhookID.hasPrefix("msg_") && event.webhookID.count == 36)
        #expect(event.url == Self.target.url && event.key == Self.target.key)
        // Node C, asked to redeliver, renders at the same moment as B, which claimed the event:
        // whoever stores first, both send that body.
        let c = try nodes.database.open(lease: Self.lease)
        defer { c.close() }
        #expect(try c.fillWebhookBody(of: job.id, with: [5]) == [5])
        #expect(try nodes.b.fillWebhookBody(of: job.id, with: [7, 7]) == [5], "the claiming node sends the body stored first")
        #expect(try nodes.b.webhookEvent(of: job.id)?.body == [5])
        #expect(try writeIsStale(nodes.a, .webhookRendered(job.id, body: [1])), "a node whose lease lapsed stores nothing")
    }

    @Test("retention on two nodes at once deletes each expired job once, in batches; pending webhooks are spared")
    func retentionOneNodeAtATime() throws {
        let nodes = try twoNodes()
        defer { nodes.close() }
        let jobs = (0..<60).map { makeJob(createdAt: epoch.addingTimeInterval(Double($0))) }
        try write(nodes.a, .submitted(jobs)).get()
        for (index, job) in jobs.enumerated() {
            let event = index % 12 == 0 ? WebhookEventRecord(jobID: job.id, webhookID: "msg_\(index)", url: Self.target.url, key: [1], body: [1]) : nil
            try write(nodes.a, .finished(job.key, attempt: 1, startedAt: nil, status: .succeeded, result: nil, error: nil,
                                         at: epoch.addingTimeInterval(Double(index)), event: event, owner: job.owner, kind: job.kind)).get()
        }
        let pending = Set(jobs.enumerated().filter { $0.offset % 12 == 0 }.map(\.element.id))
        let cutoff = epoch.addingTimeInterval(3600)
        // While another transaction holds retention's lock, a node deletes nothing this round.
        let holder = try nodes.database.connection()
        defer { holder.close() }
        try holder.execute("BEGIN")
        try holder.execute("SELECT pg_advisory_xact_lock($1::bigint)", [PostgresJobStore.jobRetentionLockKey])
        #expect(try nodes.a.purgeExpired(finishedBefore: cutoff, limit: 7).isEmpty, "the lock is taken: skipped")
        try holder.execute("COMMIT")
        let deleted = Mutex<[JobID]>([])
        let rounds = Mutex(0)
        let group = DispatchGroup()
        for node in [nodes.a, nodes.b] {
            DispatchQueue.global().async(group: group) {
                // Both nodes sweep, again and again, until nothing is left to delete.
                let deadline = ContinuousClock.now + .seconds(20)
                while ContinuousClock.now < deadline {
                    let ids = (try? node.purgeExpired(finishedBefore: cutoff, limit: 7).map(\.key.id)) ?? []
                    deleted.withLock { $0 += ids }
                    rounds.withLock { $0 += 1 }
                    if ids.isEmpty, (try? node.expiredJobs(finishedBefore: cutoff, limit: 1).isEmpty) == true { return }
                }
            }
        }
        #expect(group.wait(timeout: .now() + 30) == .success)
        let all = deleted.withLock { $0 }
        #expect(all.count == jobs.count - pending.count, "each expired job deleted once")
        #expect(Set(all) == Set(jobs.map(\.id)).subtracting(pending))
        let left = try nodes.connection.query("SELECT id FROM jobs").map { try PostgresRowDecoding.jobID($0, "id") }
        #expect(Set(left) == pending, "the jobs with a pending webhook stay")
        #expect(try nodes.connection.query("SELECT count(*) AS n FROM webhook_events").first?.int("n") == pending.count)
        #expect(try nodes.a.loadUnfinished().counts == groupedCounts(nodes.connection), "the counts follow the deletes")
    }
}

extension StoreChange {
    /// A webhook attempt's parts, to write for any job.
    struct Attempted {
        var attempt: DeliveryAttempt
        var state: WebhookState
        var next: Date?

        func change(_ id: JobID) -> StoreChange {
            .webhookAttempted(id, attempt: attempt, state: state, nextAttemptAt: next)
        }
    }
}
