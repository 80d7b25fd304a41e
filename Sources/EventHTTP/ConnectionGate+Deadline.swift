import CLibevent

/// Request deadlines, against slowloris: libevent 2.1's evhttp resets a connection's read
/// timeout on every byte and has no "head complete" event, so a client that sends one header
/// byte a second could hold a connection for ever, and enough of them every connection.
///
/// A connection's deadline starts when it is accepted and again when a reply to it has been
/// sent completely (`evhttp_request_set_on_complete_cb`), and it ends when its next request
/// reaches the handler; a trickle of bytes does not extend it. A connection past its deadline
/// is closed. At the connection limit, the connection that has waited longest for its next
/// request is closed to make room for a new one. A connection whose request is in the handler
/// (a parked wait, an event stream, a reply still being written) has no deadline and is never
/// closed by the gate.
extension ConnectionGate {
    /// A request on `connection` reached the handler: its deadline is off until its reply ends.
    func requestArrived(on connection: OpaquePointer) {
        adoptConnections()
        awaitingRequest.remove(connection)
        inHandler.insert(connection)
        updateListening()
    }

    /// The reply on `connection` was sent completely: the next request's deadline starts.
    func replyCompleted(on connection: OpaquePointer) {
        armDeadline(of: connection)
        updateListening()
        replyEnded(on: connection)
    }

    func armDeadline(of connection: OpaquePointer) {
        guard tracked.contains(connection) else { return }
        let deadline = ContinuousClock.now + requestTimeout
        awaitingRequest.arm(connection, deadline: deadline)
        if deadlineTimer == nil { scheduleDeadlineTimer(for: deadline) }
    }

    /// Closes the connection that has waited longest for its next request, if any.
    func evictLongestWaiting() {
        guard let connection = awaitingRequest.popFirst() else { return }
        // The close callback (connectionClosed) counts it out.
        evhttp_connection_free(connection)
    }

    private func scheduleDeadlineTimer(for deadline: ContinuousClock.Instant) {
        // One timer at a time: a replaced one would outlive `releaseAll` and call a freed gate.
        deadlineTimer?.cancel()
        deadlineTimer = loop.schedule(after: max(.zero, deadline - .now)) { [unowned self] in
            deadlineTimer = nil
            closeExpiredConnections()
        }
    }

    private func closeExpiredConnections() {
        let now = ContinuousClock.now
        while let (connection, deadline) = awaitingRequest.first, deadline <= now {
            awaitingRequest.remove(connection)
            evhttp_connection_free(connection)
        }
        updateListening()
        if let (_, deadline) = awaitingRequest.first { scheduleDeadlineTimer(for: deadline) }
    }
}
