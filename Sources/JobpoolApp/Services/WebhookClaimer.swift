import Foundation
import JobCore
import Logging
import Webhooks

/// The claim pass of a node sharing its store with others: every second it claims the pending
/// webhook events that no node holds and that are due (released by the rescue sweep after
/// their node died, by a node's clean stop, or made by the rescue for a job it failed), as many
/// as the deliverer has room for, and hands them to the deliverer on their schedule. On its own
/// thread, never the event loop's: every call blocks on the database. A store one process
/// owns has nothing to claim (its pending events were loaded at start), so no thread starts.
final class WebhookClaimer: BlockingService {
    private let store: any JobStore
    private let executor: JobExecutor
    private let webhooks: WebhookDeliverer
    private let logger: Logger
    private let thread: PeriodicThread
    /// Events claimed in one transaction at most.
    static let batchSize = 100

    init(store: any JobStore, executor: JobExecutor, webhooks: WebhookDeliverer, logger: Logger, interval: Duration = .seconds(1)) {
        self.store = store
        self.executor = executor
        self.webhooks = webhooks
        self.logger = logger
        thread = PeriodicThread(interval: interval)
    }

    var name: String { "webhook claims" }

    func start() {
        guard store.cluster != nil else { return }
        // A full batch may mean more are due: claim again at once.
        thread.start { [self] in
            while !thread.isStopped, pass() == Self.batchSize {}
        }
    }

    func stop() {
        thread.stop()
    }

    /// One claim; returns how many events were claimed.
    private func pass() -> Int {
        let limit = min(Self.batchSize, webhooks.backlogRoom)
        guard limit > 0 else { return 0 }
        do throws(StoreError) {
            let claimed = try store.claimWebhookEvents(limit: limit)
            guard !claimed.isEmpty else { return 0 }
            var ready: [WebhookEventRecord] = []
            var jobs: [JobID: Job] = [:]
            for event in claimed {
                guard let job = try executor.loadJob(withID: event.jobID) else {
                    logger.warning("A claimed webhook event's job is gone; the event is not sent", metadata: ["job.id": "\(event.jobID)"])
                    continue
                }
                jobs[event.jobID] = job
                if let rendered = try render(event, job: job) { ready.append(rendered) }
            }
            webhooks.restore(ready) { jobs[$0] }
            logger.info("Claimed pending webhook events", metadata: ["count": "\(claimed.count)"])
            return claimed.count
        } catch {
            logger.warning("Could not claim pending webhook events; trying again next pass", metadata: ["error": "\(error.message)"])
            return 0
        }
    }

    /// An event made by the rescue has no body yet: render it here, from the job's final state
    /// as the deliverer renders every body, and store it before any attempt, so that every
    /// attempt on any node sends these bytes. Nil if the event is no longer this node's.
    private func render(_ event: WebhookEventRecord, job: Job) throws(StoreError) -> WebhookEventRecord? {
        guard event.body.isEmpty else { return event }
        var rendered = event
        rendered.body = webhooks.makeEvent(for: job, final: job.snapshot()).body
        switch store.applyAndWait(.webhookRendered(event.jobID, body: rendered.body)) {
        case .success: return rendered
        case .failure(let error) where error.isStale: return nil
        case .failure(let error): throw error
        }
    }
}
