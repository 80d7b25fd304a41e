import CLibPQ

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
