import CLibevent

/// One request received by ``HTTPServer``, owned by the loop thread.
///
/// Every request gets exactly one reply through ``respond(status:headers:body:)``; libevent
/// frees the request after that reply, so the object must not be used afterwards. A request
/// whose client has gone away may still be answered: libevent then just frees it.
public final class HTTPRequest {
    private let raw: OpaquePointer
    private let connections: ConnectionGate
    /// The method, or `nil` for one evhttp knows but this type does not name.
    public let method: HTTPMethod?
    /// The path as sent, without the query, not percent-decoded.
    public let path: String
    /// The raw query string after `?`, if any.
    public let query: String?
    /// True once a reply was sent.
    public private(set) var isAnswered = false
    /// Headers added to whatever reply is sent (a request ID, say).
    public var responseHeaders: [(name: String, value: String)] = []
    /// Called with the status once the reply is sent (for access logs).
    public var onResponse: ((Int) -> Void)?
    /// While a streamed reply is open: what to run if the client goes away first.
    private var onStreamClosed: (() -> Void)?
    /// True between ``startStream(status:headers:onClosed:)`` and the stream's end or close.
    public private(set) var isStreaming = false

    init(raw: OpaquePointer, connections: ConnectionGate) {
        self.raw = raw
        self.connections = connections
        self.method = HTTPMethod(libevent: evhttp_request_get_command(raw))
        if let uri = evhttp_request_get_evhttp_uri(raw) {
            let rawPath = evhttp_uri_get_path(uri).map { String(cString: $0) } ?? "/"
            self.path = rawPath.isEmpty ? "/" : rawPath
            self.query = evhttp_uri_get_query(uri).map { String(cString: $0) }
        } else {
            self.path = "/"
            self.query = nil
        }
    }

    /// The value of the first header with this name (case-insensitive), if any.
    public func header(_ name: String) -> String? {
        guard let headers = evhttp_request_get_input_headers(raw),
              let value = evhttp_find_header(headers, name) else { return nil }
        return String(cString: value)
    }

    /// The request body's length in bytes, without copying it.
    public var bodyLength: Int {
        guard let buffer = evhttp_request_get_input_buffer(raw) else { return 0 }
        return evbuffer_get_length(buffer)
    }

    /// Copies the request body out of libevent's buffer.
    public func readBody() -> [UInt8] {
        guard let buffer = evhttp_request_get_input_buffer(raw) else { return [] }
        let length = evbuffer_get_length(buffer)
        guard length > 0 else { return [] }
        return [UInt8](unsafeUninitializedCapacity: length) { storage, count in
            count = Int(evbuffer_copyout(buffer, storage.baseAddress, length))
            if count < 0 { count = 0 }
        }
    }

    /// Sends the one reply. Later calls are ignored (and assert in debug builds).
    public func respond(status: Int, headers: [(name: String, value: String)] = [], body: [UInt8] = []) {
        assert(!isAnswered, "HTTPRequest answered twice")
        guard !isAnswered else { return }
        isAnswered = true
        addHeaders(headers)
        if !body.isEmpty {
            body.withUnsafeBytes { bytes in
                _ = evbuffer_add(evhttp_request_get_output_buffer(raw), bytes.baseAddress, bytes.count)
            }
        }
        evhttp_send_reply(raw, Int32(status), HTTPStatusReason.phrase(for: status), nil)
        onResponse?(status)
    }

    private func addHeaders(_ headers: [(name: String, value: String)]) {
        let outputHeaders = evhttp_request_get_output_headers(raw)
        if method == nil {
            // libevent reads no body for a method it does not know, so any body the client sent
            // is still on the connection and would be parsed as the next request: close it.
            evhttp_add_header(outputHeaders, "Connection", "close")
        }
        for (name, value) in responseHeaders + headers {
            // evhttp_add_header refuses values with CR or LF, so a bad value cannot split the reply.
            evhttp_add_header(outputHeaders, name, value)
        }
    }

    // MARK: - Streamed replies (Server-Sent Events)

    /// Starts a reply whose body is sent in pieces (chunked for HTTP/1.1) with
    /// ``sendChunk(_:)`` and ended with ``endStream()``. If the client goes away first,
    /// `onClosed` runs once and the request must not be used again: it is freed then (see
    /// `streamConnectionClosed`). (libevent notices a closed client when a write to it fails, so a stream should
    /// write now and then.)
    public func startStream(status: Int, headers: [(name: String, value: String)], onClosed: @escaping () -> Void) {
        assert(!isAnswered, "HTTPRequest answered twice")
        guard !isAnswered else { return }
        isAnswered = true
        addHeaders(headers)
        evhttp_send_reply_start(raw, Int32(status), HTTPStatusReason.phrase(for: status))
        if let connection = evhttp_request_get_connection(raw), let events = evhttp_connection_get_bufferevent(connection) {
            // libevent writes at most 16 KiB per write(2) by default; a stream's batch can be
            // hundreds of KiB, and a system call per 16 KiB for each of many streams cost more
            // than the bytes.
            bufferevent_set_max_single_write(events, 1 << 20)
        }
        isStreaming = true
        onStreamClosed = onClosed
        if let connection = evhttp_request_get_connection(raw) {
            // The gate holds this request until the stream ends or closes.
            connections.observeClose(of: connection) { [self] in streamConnectionClosed() }
        }
        onResponse?(status)
    }

    /// Sends one piece of a streamed reply. Ignored once the stream has ended or closed.
    public func sendChunk(_ bytes: [UInt8]) {
        guard isStreaming, !bytes.isEmpty, let buffer = evbuffer_new() else { return }
        bytes.withUnsafeBytes { _ = evbuffer_add(buffer, $0.baseAddress, $0.count) }
        evhttp_send_reply_chunk(raw, buffer)
        evbuffer_free(buffer)
    }

    /// Sends one piece of a streamed reply that other replies send too, without copying it:
    /// the connection's buffer refers to `shared` until it is written.
    public func sendChunk(_ shared: SharedBytes) {
        guard isStreaming, shared.count > 0, let buffer = evbuffer_new() else { return }
        let context = Unmanaged.passRetained(shared).toOpaque()
        if evbuffer_add_reference(buffer, shared.pointer, shared.count, sharedBytesReleased, context) != 0 {
            Unmanaged<SharedBytes>.fromOpaque(context).release()
        } else {
            // Moves the reference into the connection's output (no copy), behind the chunk's size line.
            evhttp_send_reply_chunk(raw, buffer)
        }
        evbuffer_free(buffer)
    }

    /// Bytes of a streamed reply written but not yet taken by the kernel (the connection's
    /// output buffer): how far a slow client has fallen behind. Zero once the stream is closed.
    public var unsentByteCount: Int {
        guard isStreaming, let connection = evhttp_request_get_connection(raw),
              let events = evhttp_connection_get_bufferevent(connection),
              let output = bufferevent_get_output(events) else { return 0 }
        return evbuffer_get_length(output)
    }

    /// Ends a streamed reply; the connection may then carry the client's next request.
    public func endStream() {
        guard isStreaming else { return }
        isStreaming = false
        onStreamClosed = nil
        if let connection = evhttp_request_get_connection(raw) { connections.stopObserving(connection) }
        evhttp_send_reply_end(raw)
    }

    private func streamConnectionClosed() {
        guard isStreaming else { return }
        isStreaming = false
        // When the client went away, libevent 2.1 detaches a request whose reply is not done
        // (its connection becomes NULL) instead of freeing it, and the connection's close
        // callback, which brought us here, runs after that. A detached request is ours to
        // free, and `evhttp_send_reply_end` frees one that has no connection. A request still
        // attached (the whole server is shutting down) is freed by libevent right after this.
        if evhttp_request_get_connection(raw) == nil { evhttp_send_reply_end(raw) }
        let closed = onStreamClosed
        onStreamClosed = nil
        closed?()
    }
}
