import CLibevent
import Glibc

/// An evhttp server on an ``EventLoop``. Every request reaches `handler` on the loop thread.
///
/// ```swift
/// let server = try HTTPServer(loop: loop, configuration: .init()) { request in
///     request.respond(status: 200, body: Array("ok".utf8))
/// }
/// let port = try server.listen(host: "127.0.0.1", port: 0)
/// ```
public final class HTTPServer {
    private let loop: EventLoop
    private let http: OpaquePointer
    private let handler: (HTTPRequest) -> Void
    private let gate: ConnectionGate
    private var boundSockets: [OpaquePointer] = []

    /// Creates the server. Call on the loop thread, or before the loop runs.
    public init(loop: EventLoop, configuration: HTTPServerConfiguration,
                handler: @escaping (HTTPRequest) -> Void) throws(EventError) {
        guard let http = evhttp_new(loop.base) else { throw EventError.libevent("evhttp_new failed") }
        self.loop = loop
        self.http = http
        self.handler = handler
        self.gate = ConnectionGate(loop: loop, maxConnections: configuration.maxConnections,
                                   requestTimeout: configuration.requestTimeout)
        evhttp_set_allowed_methods(http, HTTPMethod.allLibeventBits)
        evhttp_set_max_headers_size(http, configuration.maxHeadersSize)
        evhttp_set_max_body_size(http, configuration.maxBodySize)
        var timeout = timeval(duration: configuration.connectionTimeout)
        evhttp_set_timeout_tv(http, &timeout)
        let context = Unmanaged.passUnretained(self).toOpaque()
        evhttp_set_gencb(http, httpServerRequestCallback, context)
        evhttp_set_bevcb(http, httpServerMakeBufferEvent, Unmanaged.passUnretained(gate).toOpaque())
    }

    deinit {
        // evhttp_free frees the listeners before the connections, whose close callbacks would
        // otherwise re-enable a freed listener.
        gate.listeners = []
        evhttp_free(http)
        gate.releaseAll()
    }

    /// Binds and listens (see ``ListeningSocket`` for the backlog and `TCP_NODELAY`). `port` 0
    /// picks a free port. Returns the port actually bound.
    public func listen(host: String, port: Int) throws(EventError) -> Int {
        let listener = try ListeningSocket.make(on: loop, host: host, port: port, callback: nil, context: nil)
        guard let handle = evhttp_bind_listener(http, listener) else {
            evconnlistener_free(listener)
            throw EventError.bind(host: host, port: port, reason: "evhttp_bind_listener failed")
        }
        boundSockets.append(handle)
        gate.listeners.append(listener)
        return ListeningSocket.port(of: listener)
    }

    /// Runs `body` on the loop thread once every request that reached the handler has had its
    /// reply written out (or its client has gone), or after `timeout` for clients that do not
    /// read, whichever is first. A stopping server calls it before it stops the loop: a reply
    /// is written on a later loop turn than the one that sends it, and stopping at once would
    /// free its connection with the reply unwritten. Loop thread only.
    public func whenRepliesSent(timeout: Duration, _ body: @escaping () -> Void) {
        var done = false
        var timer: LoopTimer?
        let finish = { [gate] in
            guard !done else { return }
            done = true
            timer?.cancel()
            gate.onIdle = nil
            body()
        }
        guard !gate.inHandler.isEmpty else { return finish() }
        timer = loop.schedule(after: timeout) { finish() }
        gate.onIdle = finish
    }

    fileprivate func handle(_ raw: OpaquePointer) {
        if let connection = evhttp_request_get_connection(raw) { gate.requestArrived(on: connection) }
        evhttp_request_set_on_complete_cb(raw, httpServerReplyCompleted, Unmanaged.passUnretained(gate).toOpaque())
        handler(HTTPRequest(raw: raw, connections: gate))
    }
}

private func httpServerRequestCallback(_ request: OpaquePointer?, _ context: UnsafeMutableRawPointer?) {
    guard let request, let context else { return }
    Unmanaged<HTTPServer>.fromOpaque(context).takeUnretainedValue().handle(request)
}

private func httpServerMakeBufferEvent(_ base: OpaquePointer?, _ context: UnsafeMutableRawPointer?) -> OpaquePointer? {
    guard let base, let context else { return nil }
    return Unmanaged<ConnectionGate>.fromOpaque(context).takeUnretainedValue().makeBufferEvent(base: base)
}

/// libevent calls this when a reply has been written completely, just before it frees the request.
private func httpServerReplyCompleted(_ request: OpaquePointer?, _ context: UnsafeMutableRawPointer?) {
    guard let request, let context, let connection = evhttp_request_get_connection(request) else { return }
    Unmanaged<ConnectionGate>.fromOpaque(context).takeUnretainedValue().replyCompleted(on: connection)
}
