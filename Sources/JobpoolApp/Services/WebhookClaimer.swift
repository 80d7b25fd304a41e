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

    /// One claim; returns how many events were claimed. An event claimed but not handed to
    /// the deliverer (its job could not be read, or is not seen finished here yet) is given
    /// back at once: held by a live node that never sends it, it would wait for that node's end.
    private func pass() -> Int {
        let limit = min(Self.batchSize, webhooks.backlogRoom)
        guard limit > 0 else { return 0 }
        let claimed: [WebhookEventRecord]
        do throws(StoreError) {
            claimed = try store.claimWebhookEvents(limit: limit)
        } catch {
            logger.warning("Could not claim pending webhook events; trying again next pass", metadata: ["error": "\(error.message)"])
            return 0
        }
        guard !claimed.isEmpty else { return 0 }
        var ready: [WebhookEventRecord] = []
        var jobs: [JobID: Job] = [:]
        var givenBack: [JobID] = []
        for event in claimed {
            do throws(StoreError) {
                guard let job = try executor.loadJob(withID: event.jobID) else {
                    logger.warning("A claimed webhook event's job is gone; the event is not sent", metadata: ["job.id": "\(event.jobID)"])
                    continue
                }
                // A copy this node watches may not have heard of the final state yet (the
                // rescue's, say): a body rendered from it would be frozen wrong for every attempt.
                guard !event.body.isEmpty || job.currentStatus.isFinished else {
                    givenBack.append(event.jobID)
                    continue
                }
                jobs[event.jobID] = job
                if let rendered = try render(event, job: job) { ready.append(rendered) }
            } catch {
                logger.warning("Could not prepare a claimed webhook event; it is given back", metadata: [
                    "job.id": "\(event.jobID)", "error": "\(error.message)"])
                givenBack.append(event.jobID)
            }
        }
        webhooks.restore(ready) { jobs[$0] }
        if !givenBack.isEmpty {
            do throws(StoreError) {
                try store.releaseWebhookEvents(givenBack)
            } catch {
                logger.warning("Could not give back claimed webhook events; they are released when this node's lease expires",
                               metadata: ["count": "\(givenBack.count)", "error": "\(error.message)"])
            }
        }
        logger.info("Claimed pending webhook events", metadata: ["count": "\(ready.count)", "given_back": "\(givenBack.count)"])
        return claimed.count
    }

    /// An event made by the rescue has no body yet: render it here, from the job's final state
    /// as the deliverer renders every body, and store it before any attempt; if another node
    /// stored one first (a redelivery), that one is sent. Every attempt on any node sends the
    /// stored bytes. Nil if the event is gone, or this node could not store a body.
    private func render(_ event: WebhookEventRecord, job: Job) throws(StoreError) -> WebhookEventRecord? {
        guard event.body.isEmpty else { return event }
        var rendered = event
        guard let body = try store.fillWebhookBody(of: event.jobID, with: webhooks.makeEvent(for: job, final: job.snapshot()).body) else {
            return nil
        }
        rendered.body = body
        return rendered
    }
}
