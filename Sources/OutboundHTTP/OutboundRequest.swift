/// One outbound HTTP request, as fetch jobs, webhook deliveries and the command-line client
/// describe it.
public struct OutboundRequest: Sendable {
    public var url: String
    /// The method; `nil` means `GET`, or `POST` when `body` is set.
    public var method: String?
    /// The request body; an empty one is sent as `Content-Length: 0`.
    public var body: [UInt8]?
    public var headers: [(name: String, value: String)]
    /// The whole transfer, connect included.
    public var timeout: Duration
    public var connectTimeout: Duration
    /// The most body bytes accepted, counted after decompression; more aborts the transfer.
    public var maxBytes: Int
    public var followRedirects: Bool
    public var maxRedirects: Int
    /// Keep the response body in ``OutboundResponse/body``. Fetch jobs and webhooks leave it
    /// off: they only count the bytes.
    public var keepsBody: Bool
    /// Stop when no byte has arrived for this long, however long `timeout` is: for a stream
    /// that sends heartbeats, where a silent connection means a dead server.
    public var idleTimeout: Duration?

    public init(url: String, method: String? = nil, body: [UInt8]? = nil, headers: [(name: String, value: String)] = [],
                timeout: Duration = .seconds(30), connectTimeout: Duration = .seconds(10),
                maxBytes: Int = 10 * 1024 * 1024, followRedirects: Bool = true, maxRedirects: Int = 5,
                keepsBody: Bool = false, idleTimeout: Duration? = nil) {
        self.url = url
        self.method = method
        self.body = body
        self.headers = headers
        self.timeout = timeout
        self.connectTimeout = connectTimeout
        self.maxBytes = maxBytes
        self.followRedirects = followRedirects
        self.maxRedirects = maxRedirects
        self.keepsBody = keepsBody
        self.idleTimeout = idleTimeout
    }
}

/// What came back. Any HTTP status is a response; only transport failures are errors.
public struct OutboundResponse: Sendable, Equatable {
    public var status: Int
    public var finalURL: String
    /// Body bytes received, after decompression.
    public var length: Int
    public var contentType: String?
    public var redirects: Int
    public var elapsed: Duration
    /// The response's Retry-After header, as sent.
    public var retryAfter: String?
    /// Where a redirect that was not followed points, resolved to an absolute URL by curl
    /// (CURLINFO_REDIRECT_URL): jobpool follows it itself through a proxy.
    var redirectLocation: String?
    /// The body, when the request's `keepsBody` is set: all of it, or with a streaming
    /// receiver, the body of a response that was not a 2xx (such as a problem+json error).
    public var body: [UInt8] = []
}

/// Why a transfer failed. `code` is the stable vocabulary jobs report.
public enum OutboundFailure: Error, Sendable, Equatable {
    case dns(String)
    case connect(String)
    case timeout(String)
    case tls(String)
    case tooLarge(limit: Int)
    case blockedAddress(AddressPolicy.Refusal)
    case tooManyRedirects(limit: Int)
    case protocolError(String)
    /// The caller aborted the transfer (a cancel or a shutdown).
    case aborted

    /// True for failures that may pass if the request is made again later: a timeout or a
    /// connection that could not be made. Never a refused address or a bad response.
    public var isTransient: Bool {
        switch self {
        case .timeout, .connect: return true
        default: return false
        }
    }

    public var code: String {
        switch self {
        case .dns: return "dns"
        case .connect: return "connect"
        case .timeout: return "timeout"
        case .tls: return "tls"
        case .tooLarge: return "too_large"
        case .blockedAddress: return "blocked_address"
        case .tooManyRedirects: return "too_many_redirects"
        case .protocolError: return "protocol"
        case .aborted: return "aborted"
        }
    }

    public var message: String {
        switch self {
        case .dns(let detail): return "The host name could not be resolved: \(detail). Check the URL's host."
        case .connect(let detail): return "Could not connect: \(detail). Check that the server is up and the port is right."
        case .timeout(let detail): return "The request timed out: \(detail). Raise timeout_seconds if the server is slow."
        case .tls(let detail): return "The TLS handshake or certificate check failed: \(detail)."
        case .tooLarge(let limit): return "The response body is larger than max_bytes (\(limit) bytes); the transfer was stopped. Raise max_bytes (up to 104857600) to fetch it."
        case .blockedAddress(let refusal):
            return "Refused to connect to \(refusal.address), in the \(refusal.rangeName) range: jobpool blocks internal addresses by default. To allow it, \(AddressPolicy.advice(for: refusal))."
        case .tooManyRedirects(let limit): return "More than \(limit) redirects; the chain was not followed further."
        case .protocolError(let detail): return "The HTTP exchange failed: \(detail)."
        case .aborted: return "The transfer was stopped because the job was cancelled or the server is shutting down."
        }
    }
}
