import CLibevent
import Glibc

/// The seed's TCP example done right: every line a client sends comes back upper-cased (ASCII
/// only, like Python's `bytes.upper()`), served with bufferevents on the event loop.
///
/// Unlike the seed, a client that disconnects is closed and forgotten (no spinning on a dead
/// socket), and no client can starve the others: each read callback handles at most what one
/// socket read brought in, lines are capped, and a client that stops reading its replies is
/// paused instead of growing the server's memory. Loop thread only.
public final class LineEchoServer {
    public struct Configuration: Sendable {
        /// Longest line accepted, without its newline; a longer one closes the connection.
        public var maxLineLength = 64 * 1024
        /// Open connections at most; at the limit the listener pauses until one closes.
        public var maxConnections = 1024
        /// A connection that sends nothing for this long is closed.
        public var idleTimeout: Duration = .seconds(300)
        /// Replies buffered for a client that is not reading, before its reads are paused.
        public var maxPendingOutput = 1024 * 1024

        public init() {}
    }

    private let loop: EventLoop
    let configuration: Configuration
    private var listener: OpaquePointer?
    private var connectionObjects: [ObjectIdentifier: EchoConnection] = [:]
    private var isPaused = false
    /// Told (on the loop thread) when a connection sent a line over the cap and is being closed.
    public var onLineTooLong: (() -> Void)?

    public init(loop: EventLoop, configuration: Configuration) throws(EventError) {
        self.loop = loop
        self.configuration = configuration
    }

    deinit {
        // Not close(): that reports back to this server, which is already going away.
        for connection in connectionObjects.values { connection.freeWithoutNotifying() }
        if let listener { evconnlistener_free(listener) }
    }

    /// Listens on `host` (an IP address, or `localhost`) and `port` (0 picks one). Returns the bound port.
    public func listen(host: String, port: Int) throws(EventError) -> Int {
        let address = host == "localhost" ? "127.0.0.1" : host
        var storage = sockaddr_storage()
        let length: Int32
        if address.contains(":") {
            var ipv6 = sockaddr_in6()
            guard evutil_inet_pton(AF_INET6, address, &ipv6.sin6_addr) == 1 else {
                throw EventError.bind(host: host, port: port, reason: "not an IP address")
            }
            ipv6.sin6_family = sa_family_t(AF_INET6)
            ipv6.sin6_port = in_port_t(UInt16(clamping: port).bigEndian)
            withUnsafeMutableBytes(of: &storage) { $0.storeBytes(of: ipv6, as: sockaddr_in6.self) }
            length = Int32(MemoryLayout<sockaddr_in6>.size)
        } else {
            var ipv4 = sockaddr_in()
            guard evutil_inet_pton(AF_INET, address, &ipv4.sin_addr) == 1 else {
                throw EventError.bind(host: host, port: port, reason: "not an IP address")
            }
            ipv4.sin_family = sa_family_t(AF_INET)
            ipv4.sin_port = in_port_t(UInt16(clamping: port).bigEndian)
            withUnsafeMutableBytes(of: &storage) { $0.storeBytes(of: ipv4, as: sockaddr_in.self) }
            length = Int32(MemoryLayout<sockaddr_in>.size)
        }
        let flags = UInt32(LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC)
        let context = Unmanaged.passUnretained(self).toOpaque()
        let made = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                evconnlistener_new_bind(loop.base, lineEchoAccept, context, flags, -1, $0, length)
            }
        }
        guard let made else { throw EventError.bind(host: host, port: port, reason: String(cString: strerror(errno))) }
        listener = made
        return boundPort(evconnlistener_get_fd(made))
    }

    fileprivate func accept(_ fd: Int32) {
        guard let bev = bufferevent_socket_new(loop.base, fd, Int32(BEV_OPT_CLOSE_ON_FREE.rawValue)) else {
            Glibc.close(fd)
            return
        }
        let connection = EchoConnection(bufferEvent: bev, server: self)
        connectionObjects[ObjectIdentifier(connection)] = connection
        if connectionObjects.count >= configuration.maxConnections { setPaused(true) }
        connection.start()
    }

    func connectionClosed(_ connection: EchoConnection) {
        connectionObjects.removeValue(forKey: ObjectIdentifier(connection))
        if connectionObjects.count < configuration.maxConnections { setPaused(false) }
    }

    private func setPaused(_ paused: Bool) {
        guard paused != isPaused, let listener else { return }
        isPaused = paused
        if paused { evconnlistener_disable(listener) } else { evconnlistener_enable(listener) }
    }

    private func boundPort(_ fd: Int32) -> Int {
        var storage = sockaddr_in6()
        var length = socklen_t(MemoryLayout<sockaddr_in6>.size)
        _ = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        // sin_port and sin6_port sit at the same offset.
        return Int(UInt16(bigEndian: storage.sin6_port))
    }
}

private func lineEchoAccept(_ listener: OpaquePointer?, _ fd: Int32, _ address: UnsafeMutablePointer<sockaddr>?,
                            _ length: Int32, _ context: UnsafeMutableRawPointer?) {
    guard let context else { Glibc.close(fd); return }
    Unmanaged<LineEchoServer>.fromOpaque(context).takeUnretainedValue().accept(fd)
}
