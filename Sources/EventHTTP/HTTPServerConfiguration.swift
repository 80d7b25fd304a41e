/// Limits that keep a slow, idle or greedy client from holding the server's resources.
public struct HTTPServerConfiguration: Sendable {
    /// Largest request head (request line plus headers) evhttp accepts; larger gets its 431-style error.
    public var maxHeadersSize: Int = 16 * 1024
    /// evhttp's own body cap: a backstop above the application's limit, so that the
    /// application answers ordinary oversize bodies itself, with a useful error.
    public var maxBodySize: Int = 4 * 1024 * 1024
    /// How long a connection may sit without completing a read or a write.
    public var connectionTimeout: Duration = .seconds(30)
    /// How long a connection may take, from its accept or from the end of its last reply, to
    /// bring its next request (head and body) whole to the handler. Bytes trickling in do not
    /// extend it, unlike `connectionTimeout`. A connection whose request is in the handler (a
    /// wait, an event stream) has no such deadline.
    public var requestTimeout: Duration = .seconds(15)
    /// Open connections at most. At the limit, the connection that has waited longest for its
    /// next request is closed to make room for a new one; when every connection has a request
    /// in the handler, the listener stops accepting until one closes, so further clients wait
    /// in the kernel's backlog instead of taking file descriptors.
    public var maxConnections: Int = 10_000

    public init() {}
}
