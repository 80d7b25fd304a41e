/// Limits of the REST API layer.
public struct APIConfiguration: Sendable {
    /// Largest request body accepted; larger gets a 413 problem.
    public var maxBodyBytes: Int = 1024 * 1024
    /// Requests that may wait (`Prefer: wait`, `?wait=`) at once; one more gets 503.
    public var maxWaiters: Int = 4_000
    /// The longest wait a client may ask for, in seconds.
    public var maxWaitSeconds: Int = 60
    /// How long a cancel waits for a running job to stop before answering 202.
    public var cancelWait: Duration = .seconds(5)

    /// How long an `Idempotency-Key` is remembered after its job was created.
    public var idempotencyKeyLifetime: Duration = .seconds(24 * 3600)
    /// How often an event stream sends a heartbeat comment while the job is quiet.
    public var eventStreamHeartbeat: Duration = .seconds(15)
    /// How many of the latest job changes `GET /v1/events` keeps for clients that reconnect
    /// with `Last-Event-ID`; an older ID gets a `reset` event.
    public var eventReplayWindow: Int = 50_000
    /// The shortest time between two writes to one `GET /v1/events` stream: changes in between
    /// go out together.
    public var eventFlushInterval: Duration = .milliseconds(100)
    /// A `GET /v1/events` stream whose client has not taken this many bytes is sent `reset`
    /// and closed, so that a slow reader costs bounded memory.
    public var eventStreamMaxUnsentBytes: Int = 1 << 20

    public init() {}
}
