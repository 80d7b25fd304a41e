import Foundation
import JobCore

/// One attempt to deliver a job's webhook, as `GET /v1/jobs/{id}/deliveries` lists it.
public struct DeliveryAttempt: Sendable, Equatable {
    /// 1 for the first attempt; counts on across redeliveries.
    public var number: Int
    public var startedAt: Date
    public var duration: Duration
    /// The receiver's HTTP status, if it answered.
    public var status: Int?
    /// Why the attempt failed without a usable answer.
    public var error: JobFailure?
    /// When the next attempt is due, if one is scheduled.
    public var nextAttemptAt: Date?
}

/// Everything known about one job's webhook.
public struct DeliveryReport: Sendable {
    /// The `webhook-id`: the same for every attempt and redelivery of the job's event.
    public var webhookID: String
    public var state: WebhookState
    public var attempts: [DeliveryAttempt]
}
