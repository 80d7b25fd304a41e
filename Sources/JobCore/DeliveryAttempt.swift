import Foundation

/// One attempt to deliver a job's webhook, as `GET /v1/jobs/{id}/deliveries` lists it.
public struct DeliveryAttempt: Sendable, Equatable {
    public init(number: Int, startedAt: Date, duration: Duration, status: Int?, error: JobFailure?, nextAttemptAt: Date?) {
        self.number = number
        self.startedAt = startedAt
        self.duration = duration
        self.status = status
        self.error = error
        self.nextAttemptAt = nextAttemptAt
    }

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
    public init(webhookID: String, state: WebhookState, attempts: [DeliveryAttempt]) {
        self.webhookID = webhookID
        self.state = state
        self.attempts = attempts
    }

    /// The `webhook-id`: the same for every attempt and redelivery of the job's event.
    public var webhookID: String
    public var state: WebhookState
    public var attempts: [DeliveryAttempt]
}

/// A job's completion event as it is stored: made once when the job finishes, committed in the
/// same transaction as the job's final state (the outbox), and delivered from there.
public struct WebhookEventRecord: Sendable {
    public var jobID: JobID
    /// The `webhook-id`, stable across retries and redeliveries.
    public var webhookID: String
    public var url: String
    public var key: [UInt8]
    /// The frozen request body.
    public var body: [UInt8]
    public var state: WebhookState
    public var attempts: [DeliveryAttempt]
    /// Index in `attempts` where the current round (first delivery or a redelivery) began.
    public var roundStart: Int
    public var nextAttemptAt: Date?

    public init(jobID: JobID, webhookID: String, url: String, key: [UInt8], body: [UInt8], state: WebhookState = .pending,
                attempts: [DeliveryAttempt] = [], roundStart: Int = 0, nextAttemptAt: Date? = nil) {
        self.jobID = jobID
        self.webhookID = webhookID
        self.url = url
        self.key = key
        self.body = body
        self.state = state
        self.attempts = attempts
        self.roundStart = roundStart
        self.nextAttemptAt = nextAttemptAt
    }
}
