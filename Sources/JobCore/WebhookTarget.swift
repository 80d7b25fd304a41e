/// Where and how to report a job's completion: the HTTP form of `add_done_callback`.
public struct WebhookTarget: Sendable, Hashable {
    /// An absolute http or https URL.
    public var url: String
    /// The HMAC key: the bytes of the `whsec_` secret after base64 decoding. Never shown.
    public var key: [UInt8]

    public init(url: String, key: [UInt8]) {
        self.url = url
        self.key = key
    }
}

/// Where a job's completion webhook stands.
public enum WebhookState: String, Sendable, Codable {
    /// Set when a job with a webhook is submitted, and again by a redelivery.
    case pending
    /// Set by the deliverer when a receiver answered 2xx.
    case delivered
    /// Set by the deliverer when the retry schedule ran out, a receiver answered 410, or the
    /// address is refused by the SSRF policy.
    case failed
}

/// The webhook as a job shows it: never the secret.
public struct WebhookStatus: Sendable, Hashable {
    public var url: String
    public var state: WebhookState
    /// Attempts made so far, across redeliveries.
    public var attempts: Int

    public init(url: String, state: WebhookState, attempts: Int) {
        self.url = url
        self.state = state
        self.attempts = attempts
    }
}
