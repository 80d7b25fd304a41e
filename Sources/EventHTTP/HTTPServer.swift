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
        self.gate = ConnectionGate(loop: loop, maxConnections: configuration.maxConnections)
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

    /// Binds and listens. `port` 0 picks a free port. Returns the port actually bound.
    public func listen(host: String, port: Int) throws(EventError) -> Int {
        guard let handle = evhttp_bind_socket_with_handle(http, host, UInt16(clamping: port)) else {
            throw EventError.bind(host: host, port: port, reason: String(cString: strerror(errno)))
        }
        boundSockets.append(handle)
        if let listener = evhttp_bound_socket_get_listener(handle) { gate.listeners.append(listener) }
        return Self.localPort(of: evhttp_bound_socket_get_fd(handle))
    }

    fileprivate func handle(_ raw: OpaquePointer) {
        handler(HTTPRequest(raw: raw, connections: gate))
    }

    private static func localPort(of fd: Int32) -> Int {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutablePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard result == 0 else { return 0 }
        switch Int32(storage.ss_family) {
        case AF_INET:
            return withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin_port)) }
            }
        case AF_INET6:
            return withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin6_port)) }
            }
        default:
            return 0
        }
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
