import CLibPQ
import Glibc

/// A `NOTIFY` received on a connection that ran `LISTEN`.
public struct PostgresNotification: Sendable, Equatable {
    public var channel: String
    public var payload: String
    /// The server process that sent it.
    public var senderPID: Int32
}

/// What a listener needs: the socket to watch (an event loop may watch it; it must never read
/// it), and a call that reads what arrived without blocking.
extension PostgresConnection {
    /// The connection's socket, or -1 when closed. Watch it for reading, then call
    /// ``receiveNotifications()``.
    public var socketDescriptor: Int32 {
        (try? withHandle { connection throws(PostgresError) in PQsocket(connection) }) ?? -1
    }

    /// Reads whatever input has arrived (`PQconsumeInput`, which does not block) and returns
    /// the notifications it held, oldest first. Throws if the connection is lost.
    public func receiveNotifications() throws(PostgresError) -> [PostgresNotification] {
        try withHandle { connection throws(PostgresError) -> [PostgresNotification] in
            guard PQconsumeInput(connection) == 1 else {
                throw PostgresError(message: target.scrub(Self.trimmed(String(cString: PQerrorMessage(connection)))),
                                    isConnectionLost: true)
            }
            var received: [PostgresNotification] = []
            while let notification = PQnotifies(connection) {
                let notice = notification.pointee
                received.append(PostgresNotification(channel: String(cString: notice.relname),
                                                     payload: notice.extra.map { String(cString: $0) } ?? "",
                                                     senderPID: notice.be_pid))
                PQfreemem(notification)
            }
            return received
        }
    }
}

extension PostgresConnection {
    /// Waits up to `timeout` for notifications on a connection that ran `LISTEN`, and returns
    /// them (possibly none, when the time ran out). For a listener's own thread: it blocks in
    /// `poll(2)` on the socket, never holding the connection's lock while it waits. Throws if
    /// the connection is lost (a terminated backend, a server that went away).
    public func waitForNotifications(timeout: Duration) throws(PostgresError) -> [PostgresNotification] {
        let ready = try receiveNotifications()
        guard ready.isEmpty else { return ready }
        let socket = socketDescriptor
        guard socket >= 0 else { throw PostgresError(message: "the connection is closed", isConnectionLost: true) }
        var descriptor = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
        let milliseconds = Int32(clamping: max(0, timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000))
        let result = poll(&descriptor, 1, milliseconds)
        if result < 0, errno != EINTR {
            throw PostgresError(message: "waiting for notifications failed: errno \(errno)", isConnectionLost: true)
        }
        let received = try receiveNotifications()
        // A terminated backend sends its error, then closes: either way the connection is done.
        if received.isEmpty, isBroken { throw PostgresError(message: "the connection was closed by the server", isConnectionLost: true) }
        return received
    }

    /// `NOTIFY channel, payload` through `pg_notify`, so that both may be parameters.
    public func notify(_ channel: String, payload: String) throws(PostgresError) {
        try execute("SELECT pg_notify($1, $2)", [channel, payload])
    }
}
