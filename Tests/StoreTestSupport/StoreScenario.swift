import Foundation
import JobCore

/// The same changes for every store, so that the durable stores' tests can check that each
/// answers every question as `MemoryJobStore`, the reference semantics, does.
///
/// Jobs of three owners and two kinds through every state, some sharing a creation time,
/// some with webhooks (delivered, failed, pending, none yet) and idempotency keys.
public struct StoreScenario {
    public var jobs: [JobRecord] = []
    public var changes: [StoreChange] = []
    public var finishTimes: [Date] = []

    public init() {
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
                                         error: nil, at: at, event: event, owner: job.owner, kind: job.kind))
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
                                         at: at, event: nil, owner: job.owner, kind: job.kind))
            case 3: // running
                changes.append(.started(key, attempt: 1, at: tick()))
            case 4: // cancelled before it ran
                let at = tick()
                finishTimes.append(at)
                changes.append(.finished(key, attempt: 1, startedAt: nil, status: .cancelled, result: nil, error: .cancelled,
                                         at: at, event: nil, owner: job.owner, kind: job.kind))
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
                                     at: tick(), event: nil, owner: finished.owner, kind: finished.kind))
        }
    }

    /// Filters of every kind: each owner, state and kind, date ranges, and dates far beyond
    /// what an `Int64` of microseconds holds.
    public static let filters: [JobFilter] = {
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
}
