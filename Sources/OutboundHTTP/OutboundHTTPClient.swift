import CCurl
import Synchronization

/// The one outbound HTTP client, over libcurl: fetch jobs, webhook deliveries and the
/// command-line client (`jobpool submit`, `watch`, ...) all use it.
///
/// A request runs blocking on the calling (worker) thread, as in the seed. Connections are
/// reused across requests: each transfer borrows a curl session (a multi handle, whose
/// connection cache outlives the transfer, plus one easy handle) from a small pool.
///
/// ```swift
/// let client = OutboundHTTPClient(configuration: .init(policy: AddressPolicy()))
/// let abort = AbortHandle()
/// let result = client.perform(OutboundRequest(url: "https://example.com/"), abort: abort)
/// ```
public final class OutboundHTTPClient: Sendable {
    public struct Configuration: Sendable {
        /// Which addresses may be connected to.
        public var policy: AddressPolicy
        /// An operator's egress proxy. Proxy environment variables (`http_proxy`, `no_proxy`, ...)
        /// are ignored either way. With a proxy, curl connects to the proxy, not the host, so the
        /// proxy is trusted with host names; jobpool follows redirects itself and refuses any hop
        /// whose host is a literal address the policy blocks (see `performThroughProxy`).
        public var egressProxy: String?
        public var userAgent: String

        public init(policy: AddressPolicy, egressProxy: String? = nil, userAgent: String = "jobpool") {
            self.policy = policy
            self.egressProxy = egressProxy
            self.userAgent = userAgent
        }

        /// For a server the user names on the command line (`jobpool healthcheck`, the client
        /// commands): every address is allowed. The SSRF guard keeps a server's submitters away
        /// from its internal network; a user at a shell already reaches what they name.
        /// Callers do not follow redirects, so nothing but that server is reached.
        public static func namedServer(userAgent: String) -> Configuration {
            Configuration(policy: AddressPolicy(allowsPrivateNetworks: true), userAgent: userAgent)
        }
    }

    public let configuration: Configuration
    private let idleSessions = Mutex<[CurlSession]>([])
    /// Idle sessions kept for reuse; more are closed when returned.
    private let maxIdleSessions = 64

    private static let globalInit: Void = {
        // Not thread-safe in curl: run once, before any handle exists.
        curl_global_init(Int(CURL_GLOBAL_ALL))
    }()

    public init(configuration: Configuration) {
        _ = Self.globalInit
        self.configuration = configuration
    }

    /// Performs `request` on the calling thread. `abort` stops it from any other thread.
    public func perform(_ request: OutboundRequest, abort: AbortHandle = AbortHandle()) -> Result<OutboundResponse, OutboundFailure> {
        perform(request, abort: abort, receive: nil)
    }

    /// Performs `request` on the calling thread, handing a 2xx response's body to `receive`
    /// chunk by chunk as it arrives (for Server-Sent Events); any other response's body is kept
    /// whole in ``OutboundResponse/body``, so that an error can be read.
    ///
    /// ```swift
    /// client.stream(OutboundRequest(url: events, timeout: .seconds(86_400))) { chunk in parser.feed(chunk) }
    /// ```
    public func stream(_ request: OutboundRequest, abort: AbortHandle = AbortHandle(),
                       receive: (UnsafeRawBufferPointer) -> Void) -> Result<OutboundResponse, OutboundFailure> {
        // The session calls `receive` only during the transfer, which ends before this returns.
        withoutActuallyEscaping(receive) { perform(request, abort: abort, receive: $0) }
    }

    private func perform(_ request: OutboundRequest, abort: AbortHandle,
                         receive: ((UnsafeRawBufferPointer) -> Void)?) -> Result<OutboundResponse, OutboundFailure> {
        let session = idleSessions.withLock { $0.popLast() } ?? CurlSession()
        guard let session else { return .failure(.protocolError("curl could not create a handle")) }
        let result = configuration.egressProxy == nil
            ? session.perform(request, configuration: configuration, abort: abort, receive: receive)
            : performThroughProxy(request, session: session, abort: abort, receive: receive)
        idleSessions.withLock { sessions in
            if sessions.count < maxIdleSessions { sessions.append(session) }
        }
        return result
    }

    /// Refuses a URL whose host is a literal blocked address, in any spelling curl accepts: for
    /// each hop through a proxy (where curl does not connect to the host itself), and for
    /// checks at submit time.
    public func literalHostRefusal(_ url: String) -> AddressPolicy.Refusal? {
        guard let address = OutboundURL(url)?.address else { return nil }
        return configuration.policy.check(address)
    }
}
