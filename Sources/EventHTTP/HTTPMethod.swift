import CLibevent

/// The request methods evhttp can report. Every one of them reaches the application, so that
/// the router, not libevent, answers an unsupported method (405 with `Allow`).
public enum HTTPMethod: String, Sendable, CaseIterable {
    case get = "GET", post = "POST", head = "HEAD", put = "PUT", delete = "DELETE"
    case options = "OPTIONS", trace = "TRACE", connect = "CONNECT", patch = "PATCH"

    init?(libevent command: evhttp_cmd_type) {
        switch command {
        case EVHTTP_REQ_GET: self = .get
        case EVHTTP_REQ_POST: self = .post
        case EVHTTP_REQ_HEAD: self = .head
        case EVHTTP_REQ_PUT: self = .put
        case EVHTTP_REQ_DELETE: self = .delete
        case EVHTTP_REQ_OPTIONS: self = .options
        case EVHTTP_REQ_TRACE: self = .trace
        case EVHTTP_REQ_CONNECT: self = .connect
        case EVHTTP_REQ_PATCH: self = .patch
        default: return nil
        }
    }

    /// Every method, including those libevent does not know: it marks those with bit 15
    /// (`EVHTTP_REQ_UNKNOWN_`, internal to libevent 2.1) and answers them 501 itself unless that
    /// bit is allowed. Allowed, they reach the handler with a nil ``HTTPMethod``, which answers
    /// 405 with `Allow` on a known path (RFC 9110: the method is known to the origin but not
    /// supported by the resource) and 404 elsewhere, as problem+json like every other error.
    static let allLibeventBits: UInt16 = {
        let all = [EVHTTP_REQ_GET, EVHTTP_REQ_POST, EVHTTP_REQ_HEAD, EVHTTP_REQ_PUT, EVHTTP_REQ_DELETE,
                   EVHTTP_REQ_OPTIONS, EVHTTP_REQ_TRACE, EVHTTP_REQ_CONNECT, EVHTTP_REQ_PATCH]
        return UInt16(all.reduce(0) { $0 | $1.rawValue }) | libeventUnknownMethodBit
    }()

    static let libeventUnknownMethodBit: UInt16 = 1 << 15
}
