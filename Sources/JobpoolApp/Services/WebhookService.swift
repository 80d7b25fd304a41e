import Webhooks

/// The webhook deliverer's threads. They stop after the worker pool's drain, so that jobs
/// finishing in the grace period still have their events queued (and, with SQLite, stored).
extension WebhookDeliverer: BlockingService {
    var name: String { "webhook deliverer" }
}
