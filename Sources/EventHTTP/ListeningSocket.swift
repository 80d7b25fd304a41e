import CLibevent
import Glibc

/// Makes the listeners of ``HTTPServer`` and ``LineEchoServer``: bound, listening with the
/// system's largest backlog, and with `TCP_NODELAY` for every connection they accept.
///
/// ```swift
/// let listener = try ListeningSocket.make(on: loop, host: "127.0.0.1", port: 0, callback: nil, context: nil)
/// let port = ListeningSocket.port(of: listener)
/// ```
///
/// - Backlog: `evhttp_bind_socket` listens with 128, and 3,000 back-to-back connects then
///   stalled about 1 s a dozen times (a full accept queue drops SYNs, and the client resends
///   after a second). The backlog here is `net.core.somaxconn` (4096 on current Linux).
/// - `TCP_NODELAY`: a reply of tens of KB on a kept-alive connection otherwise waits about
///   40 ms for the client's delayed ACK (Nagle's algorithm). Linux copies the option from the
///   listening socket to each accepted one, so it is set once here, not per connection.
enum ListeningSocket {
    /// A bound, enabled `evconnlistener`. `callback` may be nil for `evhttp_bind_listener`,
    /// which sets its own.
    static func make(on loop: EventLoop, host: String, port: Int, callback: evconnlistener_cb?,
                     context: UnsafeMutableRawPointer?) throws(EventError) -> OpaquePointer {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE
        var found: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(UInt16(clamping: port)), &hints, &found)
        guard status == 0, let address = found else {
            throw EventError.bind(host: host, port: port, reason: String(cString: gai_strerror(status)))
        }
        defer { freeaddrinfo(found) }
        let flags = UInt32(LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC)
        guard let listener = evconnlistener_new_bind(loop.base, callback, context, flags, systemBacklog,
                                                     address.pointee.ai_addr, Int32(address.pointee.ai_addrlen)) else {
            throw EventError.bind(host: host, port: port, reason: String(cString: strerror(errno)))
        }
        // Linux copies both options to every accepted socket. SO_KEEPALIVE is what
        // evhttp_bind_socket set, so that a peer that vanished is noticed eventually.
        var on: Int32 = 1
        let size = socklen_t(MemoryLayout<Int32>.size)
        let socket = evconnlistener_get_fd(listener)
        guard setsockopt(socket, Int32(IPPROTO_TCP), TCP_NODELAY, &on, size) == 0,
              setsockopt(socket, SOL_SOCKET, SO_KEEPALIVE, &on, size) == 0 else {
            let reason = String(cString: strerror(errno))
            evconnlistener_free(listener)
            throw EventError.bind(host: host, port: port, reason: "cannot set TCP_NODELAY or SO_KEEPALIVE: \(reason)")
        }
        return listener
    }

    /// The largest accept queue the system allows: `listen` silently caps a larger one.
    static let systemBacklog: Int32 = {
        var configured: Int32 = 0
        let fd = open("/proc/sys/net/core/somaxconn", O_RDONLY)
        if fd >= 0 {
            var bytes = [UInt8](repeating: 0, count: 32)
            let count = read(fd, &bytes, bytes.count)
            close(fd)
            if count > 0 { configured = Int32(String(decoding: bytes[..<count], as: UTF8.self).filter(\.isNumber)) ?? 0 }
        }
        return max(configured, SOMAXCONN)
    }()

    /// The local port a listening socket is bound to.
    static func port(of listener: OpaquePointer) -> Int {
        var storage = sockaddr_in6()
        var length = socklen_t(MemoryLayout<sockaddr_in6>.size)
        _ = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(evconnlistener_get_fd(listener), $0, &length) }
        }
        // sin_port and sin6_port sit at the same offset.
        return Int(UInt16(bigEndian: storage.sin6_port))
    }
}
