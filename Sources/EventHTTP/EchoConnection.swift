import CLibevent
import Glibc

/// One client of ``LineEchoServer``. Owned by the server's table until it closes.
final class EchoConnection {
    private var bufferEvent: OpaquePointer?
    private unowned let server: LineEchoServer
    /// Set after EOF or an over-long line: the connection closes once its replies are flushed.
    private var isClosing = false
    /// Set after an over-long line: input is read and thrown away until the client closes (or
    /// a short timeout), because closing a socket with unread input makes the kernel send a
    /// reset, which destroys the error line on its way to the client.
    private var isRefusing = false
    /// While refusing: when the lingering read ends however much the client still sends.
    private var refusingUntil = ContinuousClock.now
    /// While refusing: the client has closed its side, so the connection closes once the
    /// error line is out.
    private var peerClosed = false

    init(bufferEvent: OpaquePointer, server: LineEchoServer) {
        self.bufferEvent = bufferEvent
        self.server = server
    }

    func start() {
        guard let bufferEvent else { return }
        let context = Unmanaged.passUnretained(self).toOpaque()
        bufferevent_setcb(bufferEvent, echoRead, echoWritten, echoEvent, context)
        var idle = timeval(duration: server.configuration.idleTimeout)
        bufferevent_set_timeouts(bufferEvent, &idle, nil)
        // The write callback fires when pending replies drain below half the cap: reads resume then.
        bufferevent_setwatermark(bufferEvent, Int16(EV_WRITE), server.configuration.maxPendingOutput / 2, 0)
        bufferevent_enable(bufferEvent, Int16(EV_READ | EV_WRITE))
    }

    fileprivate func readLines() {
        guard let bufferEvent else { return }
        let input = bufferevent_get_input(bufferEvent)
        if isRefusing {
            evbuffer_drain(input, evbuffer_get_length(input))
            // The read timeout restarts with every byte; this bounds a client that keeps sending.
            if ContinuousClock.now > refusingUntil { close() }
            return
        }
        guard !isClosing else { return }
        let output = bufferevent_get_output(bufferEvent)
        var length = 0
        while let line = evbuffer_readln(input, &length, EVBUFFER_EOL_LF) {
            writeUppercased(line, length: length, newline: true, to: output)
            free(line)
        }
        if evbuffer_get_length(input) > server.configuration.maxLineLength {
            let message = "ERROR line longer than \(server.configuration.maxLineLength) bytes; closing\n"
            _ = evbuffer_add(output, message, message.utf8.count)
            refuse()
            return
        }
        if evbuffer_get_length(output) > server.configuration.maxPendingOutput {
            bufferevent_disable(bufferEvent, Int16(EV_READ)) // resumes in `written`
        }
    }

    fileprivate func written() {
        guard let bufferEvent else { return }
        if isRefusing {
            // The error line is out: end our side, then wait for the client's end.
            guard evbuffer_get_length(bufferevent_get_output(bufferEvent)) == 0 else { return }
            if peerClosed { return close() }
            shutdown(bufferevent_getfd(bufferEvent), Int32(SHUT_WR))
        } else if isClosing {
            if evbuffer_get_length(bufferevent_get_output(bufferEvent)) == 0 { close() }
        } else {
            bufferevent_enable(bufferEvent, Int16(EV_READ))
        }
    }

    fileprivate func event(_ what: Int16) {
        guard let bufferEvent else { return }
        if isRefusing {
            let isEOF = what & Int16(BEV_EVENT_EOF) != 0 && what & Int16(BEV_EVENT_ERROR) == 0
            // On the client's EOF, the error line may still be unsent: freeing the bufferevent
            // now would drop it, so `written` closes once it is out. Errors and timeouts close.
            if isEOF, evbuffer_get_length(bufferevent_get_output(bufferEvent)) > 0 {
                peerClosed = true
                bufferevent_disable(bufferEvent, Int16(EV_READ))
                return
            }
            close()
        } else if what & Int16(BEV_EVENT_EOF) != 0, what & Int16(BEV_EVENT_ERROR) == 0 {
            readLines()
            // A last line without a newline is still answered, like the seed's final recv().
            let input = bufferevent_get_input(bufferEvent)
            let remaining = evbuffer_get_length(input)
            if remaining > 0, let bytes = evbuffer_pullup(input, remaining) {
                writeUppercased(bytes, length: remaining, newline: false, to: bufferevent_get_output(bufferEvent))
                evbuffer_drain(input, remaining)
            }
            closeWhenFlushed()
        } else {
            close() // error or idle timeout
        }
    }

    /// Sends what is queued (the error line), keeps reading and discarding, and closes when
    /// the client does or after two seconds.
    private func refuse() {
        guard let bufferEvent else { return }
        isClosing = true
        isRefusing = true
        refusingUntil = ContinuousClock.now + .seconds(2)
        evbuffer_drain(bufferevent_get_input(bufferEvent), evbuffer_get_length(bufferevent_get_input(bufferEvent)))
        var linger = timeval(tv_sec: 2, tv_usec: 0)
        bufferevent_set_timeouts(bufferEvent, &linger, &linger)
        bufferevent_setwatermark(bufferEvent, Int16(EV_WRITE), 0, 0)
        bufferevent_enable(bufferEvent, Int16(EV_READ | EV_WRITE))
        server.onLineTooLong?()
    }

    private func closeWhenFlushed() {
        guard let bufferEvent else { return }
        isClosing = true
        bufferevent_disable(bufferEvent, Int16(EV_READ))
        bufferevent_setwatermark(bufferEvent, Int16(EV_WRITE), 0, 0)
        if evbuffer_get_length(bufferevent_get_output(bufferEvent)) == 0 { close() }
    }

    /// Frees the socket when the server itself is being torn down.
    func freeWithoutNotifying() {
        guard let bufferEvent else { return }
        self.bufferEvent = nil
        bufferevent_free(bufferEvent)
    }

    func close() {
        guard let bufferEvent else { return }
        self.bufferEvent = nil
        bufferevent_free(bufferEvent)
        // The server's table holds the last strong reference; keep self alive through the call.
        withExtendedLifetime(self) { server.connectionClosed(self) }
    }

    private func writeUppercased(_ bytes: UnsafeMutablePointer<CChar>, length: Int, newline: Bool, to output: OpaquePointer?) {
        bytes.withMemoryRebound(to: UInt8.self, capacity: length) { raw in
            for index in 0..<length where raw[index] >= 0x61 && raw[index] <= 0x7A { raw[index] -= 0x20 }
        }
        _ = evbuffer_add(output, bytes, length)
        if newline { _ = evbuffer_add(output, "\n", 1) }
    }

    private func writeUppercased(_ bytes: UnsafeMutablePointer<UInt8>, length: Int, newline: Bool, to output: OpaquePointer?) {
        bytes.withMemoryRebound(to: CChar.self, capacity: length) { writeUppercased($0, length: length, newline: newline, to: output) }
    }
}

private func connection(_ context: UnsafeMutableRawPointer?) -> EchoConnection? {
    context.map { Unmanaged<EchoConnection>.fromOpaque($0).takeUnretainedValue() }
}

private func echoRead(_ bev: OpaquePointer?, _ context: UnsafeMutableRawPointer?) { connection(context)?.readLines() }
private func echoWritten(_ bev: OpaquePointer?, _ context: UnsafeMutableRawPointer?) { connection(context)?.written() }
private func echoEvent(_ bev: OpaquePointer?, _ what: Int16, _ context: UnsafeMutableRawPointer?) { connection(context)?.event(what) }
