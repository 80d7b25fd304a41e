import CCurl
import Synchronization

/// The one outbound HTTP client, over libcurl: fetch jobs and webhook deliveries both use it.
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
        let session = idleSessions.withLock { $0.popLast() } ?? CurlSession()
        guard let session else { return .failure(.protocolError("curl could not create a handle")) }
        let result = configuration.egressProxy == nil
            ? session.perform(request, configuration: configuration, abort: abort)
            : performThroughProxy(request, session: session, abort: abort)
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
