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
        let context = Unmanaged.passUnretained(self).toOpaque()
        let made = try ListeningSocket.make(on: loop, host: host == "localhost" ? "127.0.0.1" : host, port: port,
                                            callback: lineEchoAccept, context: context)
        listener = made
        return ListeningSocket.port(of: made)
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
}

private func lineEchoAccept(_ listener: OpaquePointer?, _ fd: Int32, _ address: UnsafeMutablePointer<sockaddr>?,
                            _ length: Int32, _ context: UnsafeMutableRawPointer?) {
    guard let context else { Glibc.close(fd); return }
    Unmanaged<LineEchoServer>.fromOpaque(context).takeUnretainedValue().accept(fd)
}
