import Dispatch
import Foundation
import Synchronization

/// Webhook deliveries and retention on a store that several nodes share.
///
/// A store one process owns needs none of this: its pending events are all loaded at start and
/// delivered by that process, and nobody else deletes its jobs. The defaults say so; the
/// PostgreSQL store overrides them (each pending event is claimed by one node at a time, and
/// the claim is committed before any HTTP attempt).
extension JobStore {
    /// Claims up to `limit` pending webhook events that no node holds and that are due, for this
    /// node, with their attempts so far. A store one process owns has nothing to claim: its
    /// pending events were handed over at start (``loadUnfinished()``).
    public func claimWebhookEvents(limit: Int) throws(StoreError) -> [WebhookEventRecord] { [] }

    /// Gives back events claimed by ``claimWebhookEvents(limit:)`` that this node could not
    /// hand to its deliverer (a failed read, a job not yet seen finished here), so that the next
    /// claim pass, here or on another node, takes them again instead of their staying held by a
    /// live node that will never send them. Nothing to give back for a store one process owns.
    public func releaseWebhookEvents(_ ids: [JobID]) throws(StoreError) {}

    /// The name under which this node holds the events it delivers, or nil while it holds none
    /// for sure (a shared store whose lease lapsed and is not yet registered again). The
    /// deliverer compares it before each attempt with the one it had when it took the event: a
    /// different name means the claim is gone, and the event is not sent from here again.
    public var webhookClaimant: String? { "local" }

    /// Deletes up to `limit` jobs that finished before `cutoff`, whose webhook (if any) is no
    /// longer pending, oldest finished first, and returns them. Blocks until the deletion is
    /// durable. A store shared by several nodes does this on one node at a time (the others get
    /// an empty answer for this round).
    public func purgeExpired(finishedBefore cutoff: Date, limit: Int) throws(StoreError) -> [StoredJobSummary] {
        let expired = try expiredJobs(finishedBefore: cutoff, limit: limit)
        guard !expired.isEmpty else { return [] }
        try applyAndWait(.purged(expired.map(\.key))).get()
        return expired
    }

    /// The body every attempt of `id`'s event sends: `rendered` if the event had none yet (an
    /// event a shared store's rescue made, in SQL, where the HTTP layer's renderer is not at
    /// hand), or the body stored before it. Any node may fill a missing body and the first one
    /// stored is kept, so every node and every attempt sends the same bytes, whoever rendered
    /// first (two renderings differ: a body carries the time it was made). Nil if the event is
    /// gone, or still has no body (the write was refused: this node's lease lapsed). Blocks:
    /// call it on a background thread, never the event loop.
    public func fillWebhookBody(of id: JobID, with rendered: [UInt8]) throws(StoreError) -> [UInt8]? {
        if case .failure(let error) = applyAndWait(.webhookRendered(id, body: rendered)), !error.isStale { throw error }
        guard let body = try webhookEvent(of: id)?.body, !body.isEmpty else { return nil }
        return body
    }

    /// Applies `change` and waits until it is durable, or refused. Blocks: call it on a
    /// background thread, never the event loop.
    public func applyAndWait(_ change: StoreChange) -> Result<Void, StoreError> {
        let done = DispatchSemaphore(value: 0)
        let outcome = Mutex<Result<Void, StoreError>>(.success(()))
        apply(change) { result in
            outcome.withLock { $0 = result }
            done.signal()
        }
        done.wait()
        return outcome.withLock { $0 }
    }
}
