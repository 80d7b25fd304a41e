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

    public init() {}
}
