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
        /// An operator's egress proxy. Without one, proxy environment variables are ignored.
        /// With one, the proxy is trusted to enforce egress rules, and the address policy is
        /// applied to URLs with literal addresses only (curl connects to the proxy, not the host).
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
        if configuration.egressProxy != nil, let refusal = literalHostRefusal(request.url) {
            return .failure(.blockedAddress(refusal))
        }
        let session = idleSessions.withLock { $0.popLast() } ?? CurlSession()
        guard let session else { return .failure(.protocolError("curl could not create a handle")) }
        let result = session.perform(request, configuration: configuration, abort: abort)
        idleSessions.withLock { sessions in
            if sessions.count < maxIdleSessions { sessions.append(session) }
        }
        return result
    }

    /// Refuses a URL whose host is a literal blocked address, in any spelling curl accepts, for
    /// use where curl will not connect to the host itself (through a proxy), and for checks at
    /// submit time.
    public func literalHostRefusal(_ url: String) -> AddressPolicy.Refusal? {
        guard let address = OutboundURL(url)?.address else { return nil }
        return configuration.policy.check(address)
    }
}
