import DequeModule
import Dispatch
import Foundation
import JobCore
import Logging
import OutboundHTTP
import Synchronization

/// Delivers signed completion webhooks on its own small pool of threads, never on the job
/// workers, so a slow receiver never stalls jobs.
///
/// Each finished job with a webhook becomes one event whose body is frozen when it is made;
/// every attempt and redelivery sends the same bytes with the same `webhook-id` and a fresh
/// timestamp and signature. Memory and threads are bounded: at most `maxBacklog` events wait,
/// and at most `maxPerHost` attempts run against one destination at once, so a dead or slow
/// receiver holds only its own share of the threads.
public final class WebhookDeliverer: CompletionHandler {
    public struct Configuration: Sendable {
        /// Delivery threads.
        public var workers = 4
        /// Each attempt's time limit.
        public var timeout: Duration = .seconds(15)
        /// Attempts running against one host:port at once.
        public var maxPerHost = 4
        /// Events waiting for an attempt (due now or scheduled); beyond it new events fail at once.
        public var maxBacklog = 10_000
        public var retrySchedule = RetrySchedule.standard
        public var userAgent = "jobpool"

        public init() {}
    }

    /// Renders the event body for a finished job; the HTTP layer owns the job's JSON shape.
    public typealias BodyRenderer = @Sendable (_ type: String, _ final: JobSnapshot) -> [UInt8]

    private struct Event: Sendable {
        let id: String
        let job: Job
        let url: String
        let key: [UInt8]
        let body: [UInt8]
        let destination: String
        /// The claimant this node was when it took the event (see ``WebhookDeliverer/claimant``).
        var claim: String?

        init(_ record: WebhookEventRecord, job: Job, claim: String?) {
            self.claim = claim
            id = record.webhookID
            self.job = job
            url = record.url
            key = record.key
            body = record.body
            destination = OutboundURL(record.url)?.origin ?? record.url
        }
    }

    private struct Pending {
        var event: Event
        var due: ContinuousClock.Instant
    }

    private struct Record {
        var event: Event
        var state: WebhookState
        var attempts: [DeliveryAttempt] = []
        /// True while an attempt of this job waits in a queue; a redelivery then adds nothing.
        var isQueued = false
        /// Index in `attempts` where the current round (first delivery or a redelivery) began.
        var roundStart = 0
        /// Told whether the redelivery that queued this round was stored, while its write is
        /// pending: a second redelivery meanwhile waits for the same answer.
        var redeliveryWaiters: [@Sendable (Bool) -> Void]?
    }

    private struct State {
        var isRunning = false
        var ready = Deque<Pending>()
        var scheduled: [Pending] = []
        var inFlight: [String: Int] = [:]
        var records: [JobID: Record] = [:]
        var aborts: [ObjectIdentifier: AbortHandle] = [:]
        /// Events delivered or failed for good since this process started, by owner.
        var settled: [SettledKey: Int] = [:]
        var backlog: Int { ready.count + scheduled.count }
    }

    private struct SettledKey: Hashable {
        var owner: String?
        var state: WebhookState
    }

    private enum Step {
        case deliver(Pending, AbortHandle)
        case sleep(until: ContinuousClock.Instant?)
        case exit
    }

    public let configuration: Configuration
    private let client: OutboundHTTPClient
    private let renderBody: BodyRenderer
    /// Records attempts and redeliveries in the job store, so they survive a restart.
    /// Writes a change to the store; the closure, if any, runs once it is durable, or with a
    /// ``StoreError/isStale`` error if a shared store found the event no longer this node's.
    private let persist: @Sendable (StoreChange, (@Sendable (Result<Void, StoreError>) -> Void)?) -> Void
    /// Under what name this node holds its events now (``JobStore/webhookClaimant``): nil
    /// while it cannot tell (nothing is sent then), another name once its claims are gone.
    private let claimant: @Sendable () -> String?
    /// Told when a job's webhook is delivered or fails for good (the live event stream).
    private let changes: JobChangeFeed?
    private let metrics: JobMetrics
    private let logger: Logger
    private let state = Mutex(State())
    private let wake = DispatchSemaphore(value: 0)
    private let threads = DispatchGroup()

    public init(configuration: Configuration, client: OutboundHTTPClient, logger: Logger, metrics: JobMetrics = .none,
                persist: @escaping @Sendable (StoreChange, (@Sendable (Result<Void, StoreError>) -> Void)?) -> Void = { _, durable in durable?(.success(())) },
                claimant: @escaping @Sendable () -> String? = { "local" },
                changes: JobChangeFeed? = nil,
                renderBody: @escaping BodyRenderer) {
        self.persist = persist
        self.claimant = claimant
        self.changes = changes
        self.metrics = metrics
        self.configuration = configuration
        self.client = client
        self.logger = logger
        self.renderBody = renderBody
    }

    public func start() {
        let first = state.withLock { state -> Bool in
            guard !state.isRunning else { return false }
            state.isRunning = true
            return true
        }
        guard first else { return }
        for _ in 0..<max(1, configuration.workers) {
            threads.enter()
            Thread { [self] in
                workerLoop()
                threads.leave()
            }.start()
        }
    }

    /// Stops the threads, aborting attempts in flight. Events still waiting stay in memory
    /// (and are lost with it: the in-memory store keeps nothing across a restart).
    public func stop() {
        let aborts = state.withLock { state -> [AbortHandle] in
            state.isRunning = false
            return Array(state.aborts.values)
        }
        for abort in aborts { abort.abort() }
        for _ in 0..<max(1, configuration.workers) { wake.signal() }
        _ = threads.wait(timeout: .now() + .seconds(5))
    }

    /// Makes the job's completion event: its `webhook-id` and its body, frozen from now on.
    public func makeEvent(for job: Job, final: JobSnapshot) -> WebhookEventRecord {
        let target = job.webhook ?? WebhookTarget(url: "", key: [])
        return WebhookEventRecord(jobID: job.id, webhookID: "msg_" + JobID().description.replacingOccurrences(of: "-", with: ""),
                                  url: target.url, key: target.key, body: renderBody("job." + final.status.rawValue, final))
    }

    /// The event is stored with the job's final state: queue its first attempt.
    public func eventCommitted(_ record: WebhookEventRecord, job: Job) {
        // The store wrote the event as this node's (a shared store claims it in the same
        // transaction as the final state).
        let event = Event(record, job: job, claim: claimant())
        let accepted = state.withLock { state -> Bool in
            state.records[job.id] = Record(event: event, state: .pending)
            return enqueue(event, due: .now, in: &state)
        }
        if accepted {
            wake.signal()
        } else {
            logger.warning("Webhook backlog full; delivery marked failed", metadata: ["job.id": "\(job.id)"])
            job.updateWebhook(state: .failed, attempts: 0)
            changes?.webhookSettled(job, delivered: false)
            persist(.webhookAttempted(job.id, attempt: DeliveryAttempt(
                number: 1, startedAt: Date(), duration: .zero, status: nil,
                error: JobFailure(code: "backlog_full", message: "The webhook backlog was full; redeliver the event later."),
                nextAttemptAt: nil), state: .failed, nextAttemptAt: nil), nil)
        }
    }

    /// Takes back the events a previous run stored, or that this node claimed from a store
    /// shared with other nodes: their attempts for the deliveries list, and the pending ones on
    /// their schedule (unless `schedulePending` is false: a record only, for a redelivery to
    /// start), with their `webhook-id`s, bodies and attempt numbers unchanged. Returns the IDs
    /// of the events taken.
    @discardableResult
    public func restore(_ records: [WebhookEventRecord], schedulePending: Bool = true, job: (JobID) -> Job?) -> [JobID] {
        var due = 0
        let claim = claimant()
        let taken = state.withLock { state -> [JobID] in
            var taken: [JobID] = []
            for stored in records {
                guard let owner = job(stored.jobID) else { continue }
                taken.append(stored.jobID)
                let event = Event(stored, job: owner, claim: claim)
                var record = Record(event: event, state: stored.state)
                record.attempts = stored.attempts
                record.roundStart = stored.roundStart
                // A claim replaces whatever an older claim of this node left queued.
                state.ready.removeAll { $0.event.job.id == stored.jobID }
                state.scheduled.removeAll { $0.event.job.id == stored.jobID }
                state.records[stored.jobID] = record
                guard stored.state == .pending, schedulePending else { continue }
                let wait = max(0, stored.nextAttemptAt?.timeIntervalSinceNow ?? 0)
                state.scheduled.append(Pending(event: event, due: .now + .milliseconds(Int64(wait * 1000))))
                state.records[stored.jobID]?.isQueued = true
                due += 1
            }
            return taken
        }
        if due > 0 { wake.signal() }
        return taken
    }

    /// Room for more events before new ones fail at once: a claim pass takes no more.
    public var backlogRoom: Int {
        state.withLock { max(0, configuration.maxBacklog - $0.backlog) }
    }

    /// What ``redeliver(jobID:)`` did.
    public enum RedeliverOutcome: Sendable, Equatable {
        /// A new round starts once the redelivery is stored; `whenStored` is told then.
        case queued
        /// A round is queued already (an earlier redelivery): nothing is added, nor told.
        case alreadyQueued
        /// The job has no webhook, or has not finished yet.
        case noEvent
        case backlogFull
    }

    /// Sends the job's event again: same `webhook-id`, same body, a new round of attempts.
    /// The first attempt waits until the redelivery is durable: a shared store moves the event
    /// to this node in that write, and no attempt goes out before its claim is committed.
    /// `whenStored` (for ``RedeliverOutcome/queued`` only) is told whether it was stored: a
    /// shared store refuses it if this node's lease lapsed, or the job was deleted meanwhile.
    public func redeliver(jobID: JobID, whenStored: (@Sendable (Bool) -> Void)? = nil) -> RedeliverOutcome {
        let claim = claimant()
        let outcome = state.withLock { state -> (RedeliverOutcome, Job?, Int) in
            guard var record = state.records[jobID] else { return (.noEvent, nil, 0) }
            if record.isQueued {
                // A redelivery still being stored answers this one too, when it knows.
                guard record.redeliveryWaiters != nil, let whenStored else { return (.alreadyQueued, nil, 0) }
                state.records[jobID]?.redeliveryWaiters?.append(whenStored)
                return (.queued, nil, 0)
            }
            guard state.backlog < configuration.maxBacklog else { return (.backlogFull, nil, 0) }
            record.state = .pending
            record.roundStart = record.attempts.count
            record.event.claim = claim
            record.isQueued = true // queued once durable; a second redelivery meanwhile adds nothing
            record.redeliveryWaiters = whenStored.map { [$0] } ?? []
            state.records[jobID] = record
            return (.queued, record.event.job, record.attempts.count)
        }
        if let job = outcome.1 {
            job.updateWebhook(state: .pending, attempts: outcome.2)
            persist(.webhookRedelivered(jobID, roundStart: outcome.2)) { [weak self] result in
                guard let self else { return }
                let stored: Bool = if case .success = result { true } else { false }
                let (queued, waiters) = state.withLock { state -> (Bool, [@Sendable (Bool) -> Void]) in
                    let waiters = state.records[jobID]?.redeliveryWaiters ?? []
                    state.records[jobID]?.redeliveryWaiters = nil
                    guard stored, let record = state.records[jobID], record.isQueued, record.event.claim == claim else { return (false, waiters) }
                    state.ready.append(Pending(event: record.event, due: .now))
                    return (true, waiters)
                }
                if !stored { dropMoved(jobID, claim: claim) }
                // Stored but no longer this node's to send (its claim changed meanwhile): not sent from here.
                for waiter in waiters { waiter(stored && queued) }
                if queued { wake.signal() }
            }
        }
        return outcome.0
    }

    /// The event is no longer this node's (another node claimed or redelivered it, or this
    /// node's lease lapsed): forget what this node holds of it under that claim, and send
    /// nothing more. A newer claim of this node (taken since) is left alone.
    private func dropMoved(_ id: JobID, claim: String?) {
        state.withLock { state in
            state.ready.removeAll { $0.event.job.id == id && $0.event.claim == claim }
            state.scheduled.removeAll { $0.event.job.id == id && $0.event.claim == claim }
            if state.records[id]?.event.claim == claim { state.records[id] = nil }
        }
        logger.info("Webhook event moved to another node; not sent from here any more", metadata: ["job.id": "\(id)"])
    }

    /// Forgets the delivery records of jobs that retention removed, with any redelivery still
    /// waiting for them: a job that is gone gets no more deliveries. (One already in flight
    /// finishes; its outcome finds no record and is not kept.)
    public func jobsPurged(_ ids: Set<JobID>) {
        state.withLock { state in
            for id in ids { state.records[id] = nil }
            state.ready.removeAll { ids.contains($0.event.job.id) }
            state.scheduled.removeAll { ids.contains($0.event.job.id) }
        }
    }

    /// Drops the record of an event that is delivered or failed for good and not queued again
    /// (a redelivery may have started meanwhile: then it stays).
    private func forgetIfSettled(_ id: JobID) {
        state.withLock { state in
            guard let record = state.records[id], record.state != .pending, !record.isQueued else { return }
            state.records[id] = nil
        }
    }

    /// True when no delivery is queued, scheduled or in flight: nothing more will be sent
    /// unless a job finishes or a redelivery is asked for.
    public var isIdle: Bool {
        state.withLock { $0.ready.isEmpty && $0.scheduled.isEmpty && $0.inFlight.values.allSatisfy { $0 == 0 } }
    }

    /// How many jobs' delivery records are held in memory.
    public var recordCount: Int { state.withLock { $0.records.count } }

    /// Completion events by delivery state, of every job or of one owner's (`.some(nil)` is the
    /// jobs without an owner), for `GET /v1/stats`. A walk over the records, which retention
    /// bounds; cheap next to the deliveries themselves.
    public func deliveryCounts(owner: String?? = .none) -> [WebhookState: Int] {
        state.withLock { state in
            // Pending events are all held here; settled ones leave memory once stored, so
            // they are counted as they settle (since this process started).
            var counts: [WebhookState: Int] = [:]
            for record in state.records.values where record.state == .pending {
                if case .some(let wanted) = owner, record.event.job.owner != wanted { continue }
                counts[.pending, default: 0] += 1
            }
            for (key, count) in state.settled {
                if case .some(let wanted) = owner, key.owner != wanted { continue }
                counts[key.state, default: 0] += count
            }
            return counts
        }
    }

    /// The webhook's attempts so far, or `nil` if the job has no event yet.
    public func report(jobID: JobID) -> DeliveryReport? {
        state.withLock { state in
            state.records[jobID].map { DeliveryReport(webhookID: $0.event.id, state: $0.state, attempts: $0.attempts) }
        }
    }

    private func enqueue(_ event: Event, due: ContinuousClock.Instant, in state: inout State) -> Bool {
        guard state.backlog < configuration.maxBacklog else {
            state.records[event.job.id]?.state = .failed
            state.settled[SettledKey(owner: event.job.owner, state: .failed), default: 0] += 1
            return false
        }
        state.ready.append(Pending(event: event, due: due))
        state.records[event.job.id]?.isQueued = true
        return true
    }

    // MARK: - Workers

    private func workerLoop() {
        while true {
            switch nextStep() {
            case .exit:
                return
            case .sleep(let until):
                if let until {
                    _ = wake.wait(timeout: .now() + (until - .now).dispatchInterval)
                } else {
                    wake.wait()
                }
            case .deliver(let pending, let abort):
                let attempt = attempt(pending.event, abort: abort)
                finish(pending.event, abort: abort, attempt)
                wake.signal() // a host slot is free again; another worker may be waiting for it
            }
        }
    }

    /// Moves due retries to the ready queue, then takes the first event whose destination has a
    /// free slot. Events for a saturated destination are skipped, not waited on.
    ///
    /// Before any attempt the event's claim is checked against this node's current claimant:
    /// unknown (a shared store's lease not surely held), every ready event waits a second; a
    /// different name (the node registered again after its lease lapsed), the event is dropped
    /// (the rescue sweep released it to the other nodes). An event taken while the claimant was
    /// unknown takes the current one.
    private func nextStep() -> Step {
        let current = claimant()
        return state.withLock { state -> Step in
            guard state.isRunning else { return .exit }
            let now = ContinuousClock.now
            if !state.scheduled.isEmpty {
                let due = state.scheduled.filter { $0.due <= now }.sorted { $0.due < $1.due }
                state.scheduled.removeAll { $0.due <= now }
                state.ready.append(contentsOf: due)
            }
            if current == nil, !state.ready.isEmpty {
                state.scheduled += state.ready.map { Pending(event: $0.event, due: now + .seconds(1)) }
                state.ready.removeAll()
            }
            while let index = state.ready.firstIndex(where: { state.inFlight[$0.event.destination, default: 0] < configuration.maxPerHost }) {
                var pending = state.ready.remove(at: index)
                let id = pending.event.job.id
                if pending.event.claim == nil {
                    // Taken while the lease was not surely held (the store accepted the write, so
                    // it held by the database's clock): this node's current name holds it.
                    pending.event.claim = current
                    if state.records[id]?.event.claim == nil { state.records[id]?.event.claim = current }
                }
                guard pending.event.claim == current else {
                    if state.records[id]?.event.claim == pending.event.claim { state.records[id] = nil }
                    continue
                }
                state.inFlight[pending.event.destination, default: 0] += 1
                state.records[id]?.isQueued = false
                let abort = AbortHandle()
                state.aborts[ObjectIdentifier(abort)] = abort
                return .deliver(pending, abort)
            }
            return .sleep(until: state.scheduled.map(\.due).min())
        }
    }

    private struct AttemptResult {
        var startedAt: Date
        var duration: Duration
        var outcome: Result<OutboundResponse, OutboundFailure>
    }

    private func attempt(_ event: Event, abort: AbortHandle) -> AttemptResult {
        let timestamp = Int(Date().timeIntervalSince1970)
        let request = OutboundRequest(
            url: event.url, body: event.body,
            headers: [
                ("Content-Type", "application/json"),
                ("webhook-id", event.id),
                ("webhook-timestamp", String(timestamp)),
                ("webhook-signature", WebhookSigner.signature(id: event.id, timestamp: timestamp, body: event.body, key: event.key)),
            ],
            timeout: configuration.timeout, connectTimeout: min(configuration.timeout, .seconds(10)),
            maxBytes: 64 * 1024, followRedirects: false, maxRedirects: 0)
        let startedAt = Date()
        let clock = ContinuousClock.now
        let outcome = client.perform(request, abort: abort)
        return AttemptResult(startedAt: startedAt, duration: .now - clock, outcome: outcome)
    }

    /// Records the attempt and decides: delivered, failed, or retried later.
    private func finish(_ event: Event, abort: AbortHandle, _ result: AttemptResult) {
        var status: Int?
        var error: JobFailure?
        var retryAfter: Duration?
        var final: WebhookState?
        switch result.outcome {
        case .success(let response):
            status = response.status
            retryAfter = response.retryAfter.flatMap(Self.parseRetryAfter)
            switch response.status {
            case 200..<300: final = .delivered
            case 410: final = .failed // the receiver says: stop
            case 300..<400:
                error = JobFailure(code: "redirect", message: "The receiver answered \(response.status); webhook redirects are not followed. Point the webhook at the final URL.")
            default: break
            }
        case .failure(.aborted):
            error = JobFailure(code: "aborted", message: "The server stopped while this attempt was running.")
        case .failure(let failure):
            error = JobFailure(code: failure.code, message: failure.message)
            if case .blockedAddress = failure { final = .failed } // retrying cannot help
        }

        let update = state.withLock { state -> (WebhookState, Int, DeliveryAttempt)? in
            state.inFlight[event.destination, default: 1] -= 1
            if state.inFlight[event.destination] == 0 { state.inFlight[event.destination] = nil }
            state.aborts[ObjectIdentifier(abort)] = nil
            guard var record = state.records[event.job.id] else { return nil }
            var nextDue: ContinuousClock.Instant?
            if final == nil, state.isRunning {
                // Attempts in this round so far, this failed one included.
                let failedInRound = record.attempts.count - record.roundStart + 1
                if let delay = configuration.retrySchedule.delay(afterFailedAttempts: failedInRound, retryAfter: retryAfter) {
                    nextDue = .now + delay
                } else {
                    final = .failed
                }
            }
            let nextAt = nextDue.map { Date().addingTimeInterval(($0 - .now).seconds) }
            record.attempts.append(DeliveryAttempt(
                number: record.attempts.count + 1, startedAt: result.startedAt, duration: result.duration,
                status: status, error: error, nextAttemptAt: nextAt))
            record.state = final ?? .pending
            if let nextDue {
                state.scheduled.append(Pending(event: event, due: nextDue))
                record.isQueued = true
            }
            state.records[event.job.id] = record
            return (record.state, record.attempts.count, record.attempts.last!)
        }
        let outcome = final == .delivered ? "delivered" : (final == .failed ? "failed" : "retry")
        metrics.counter("jobpool_webhook_attempts_total", [("outcome", outcome)]).increment()
        if let (webhookState, attempts, last) = update {
            // A settled event's record leaves memory once the store has its last attempt: the
            // store answers for it from then on (GET .../deliveries, a redelivery).
            let settled = webhookState != .pending
            persist(.webhookAttempted(event.job.id, attempt: last, state: webhookState, nextAttemptAt: last.nextAttemptAt)) { [weak self, job = event.job, claim = event.claim] result in
                guard let self else { return }
                guard case .success = result else { return dropMoved(job.id, claim: claim) }
                // Told once the store has it: an attempt refused as stale (the event moved to
                // another node, which sends and settles it) is told nowhere, as it is stored
                // nowhere. The job takes it unless a redelivery has begun a round since.
                let isLatest = state.withLock { state -> Bool in
                    if settled { state.settled[SettledKey(owner: job.owner, state: webhookState), default: 0] += 1 }
                    return state.records[job.id].map { $0.state == webhookState && $0.attempts.count == attempts } ?? false
                }
                if isLatest { job.updateWebhook(state: webhookState, attempts: attempts) }
                guard settled else { return }
                changes?.webhookSettled(job, delivered: webhookState == .delivered)
                forgetIfSettled(job.id)
            }
            logger.debug("Webhook attempt", metadata: [
                "job.id": "\(event.job.id)", "webhook.id": "\(event.id)", "status": "\(status.map(String.init) ?? "-")",
                "error": "\(error?.code ?? "-")", "state": "\(webhookState.rawValue)",
            ])
        }
    }

    /// Retry-After as seconds or an HTTP date.
    static func parseRetryAfter(_ text: String) -> Duration? {
        if let seconds = Int(text), seconds >= 0 { return .seconds(seconds) }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = formatter.date(from: text) else { return nil }
        return .milliseconds(Int64(max(0, date.timeIntervalSinceNow) * 1000))
    }
}

