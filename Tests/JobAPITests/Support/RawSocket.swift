import Foundation
import Glibc

/// A plain TCP client socket to 127.0.0.1, for tests that need bytes HTTP clients won't send.
final class RawSocket: Sendable {
    let fd: Int32

    /// - Parameter receiveBuffer: a small kernel receive buffer (set before connecting, so the
    ///   window stays small), for a client that falls behind soon when it stops reading.
    init(port: Int, receiveBuffer: Int32? = nil) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        if var bytes = receiveBuffer { setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, socklen_t(MemoryLayout<Int32>.size)) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        // Not close(fd) here: a class whose init throws once every property is set still runs
        // its deinit, which closes the descriptor; closing it here too closed whatever socket or
        // pipe reused the number meanwhile (libdispatch crashed on one).
        guard result == 0 else { throw POSIXError(.ECONNREFUSED) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    func write(_ text: String) { write(Array(text.utf8)) }

    func write(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent <= 0 { return }
            offset += sent
        }
    }

    /// Half-closes the sending side (the peer sees EOF).
    func shutdownWrite() { shutdown(fd, Int32(SHUT_WR)) }

    /// Drops the connection both ways, as a client that goes away does. The descriptor stays
    /// this object's until `deinit` closes it once: closing it here too would close whatever
    /// socket reuses the number by then (tests share one process).
    func disconnect() { shutdown(fd, Int32(SHUT_RDWR)) }

    /// Reads until `terminator` has arrived, EOF, or `timeout` has passed.
    func read(until terminator: String? = nil, timeout: Duration = .seconds(5)) -> String {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            // Wait no longer than what is left of `timeout` for the next bytes.
            let left = (deadline - ContinuousClock.now).components
            var wait = timeval(tv_sec: Int(left.seconds), tv_usec: max(1000, Int(left.attoseconds / 1_000_000_000_000)))
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, socklen_t(MemoryLayout<timeval>.size))
            let count = recv(fd, &buffer, buffer.count, 0)
            if count <= 0 { break }
            received += buffer[0..<count]
            if let terminator, String(decoding: received, as: UTF8.self).contains(terminator) { break }
        }
        return String(decoding: received, as: UTF8.self)
    }

    /// True if the peer closed the connection within `timeout`: EOF, or a reset (a peer that
    /// closes with unread input pending sends RST instead of FIN).
    func isClosedByPeer(within timeout: Duration) -> Bool {
        var pollDescriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let milliseconds = Int32(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        guard poll(&pollDescriptor, 1, milliseconds) == 1 else { return false }
        var byte: UInt8 = 0
        return recv(fd, &byte, 1, Int32(MSG_PEEK)) <= 0
    }
}
