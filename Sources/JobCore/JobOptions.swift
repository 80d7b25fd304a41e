import Foundation

/// How a job runs, beyond its kind and input: the top-level options of a submission.
public struct JobOptions: Sendable, Hashable {
    /// Attempts allowed in all: retryable failures and crash restarts both spend them.
    public var maxAttempts: Int
    /// From -10 to 10; higher runs first, FIFO within a priority (see ``PriorityQueue``).
    public var priority: Int
    /// A limit on each run of the job, in seconds; past it the job fails with `time_limit`.
    public var timeLimitSeconds: Double?
    /// When the job may first run; nil runs it as soon as a worker is free.
    public var runAt: Date?
    /// The idempotency key it was submitted with, if any.
    public var idempotency: IdempotencyRecord?

    public static let priorities = -10...10
    public static let attemptRange = 1...10
    public static let timeLimitRange = 0.001...86_400.0

    public init(maxAttempts: Int = 3, priority: Int = 0, timeLimitSeconds: Double? = nil, runAt: Date? = nil,
                idempotency: IdempotencyRecord? = nil) {
        self.maxAttempts = maxAttempts
        self.priority = priority
        self.timeLimitSeconds = timeLimitSeconds
        self.runAt = runAt
        self.idempotency = idempotency
    }
}

/// An `Idempotency-Key` stored with the job it created.
public struct IdempotencyRecord: Sendable, Hashable {
    /// The key as the client sent it.
    public var key: String
    /// A digest of the request it came with; the same key with another request is refused.
    public var fingerprint: String
    /// After this the key is forgotten and may create a new job.
    public var expiresAt: Date
    /// True when the server generated the job's webhook secret, so a replay shows it again.
    public var webhookSecretGenerated: Bool

    public init(key: String, fingerprint: String, expiresAt: Date, webhookSecretGenerated: Bool) {
        self.key = key
        self.fingerprint = fingerprint
        self.expiresAt = expiresAt
        self.webhookSecretGenerated = webhookSecretGenerated
    }
}

extension Double {
    /// The number as a person writes it in a message: `30`, not `30.0`; `0.25` as is.
    var plainText: String {
        self == rounded() && abs(self) < 1e15 ? String(Int(self)) : String(self)
    }
}
