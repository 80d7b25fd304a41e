import EventHTTP
import JobCore
import OutboundHTTP
import Webhooks

/// Everything `jobpool serve` can be told, with the defaults a new user gets. The executable
/// fills it from flags and environment; tests build it directly.
public struct ServerConfiguration: Sendable {
    public var host = "127.0.0.1"
    /// 0 picks a free port; ``JobpoolServer/start()`` returns the one bound.
    public var port = 8080
    public var executor = JobExecutor.Configuration()
    public var api = APIConfiguration()
    public var http = HTTPServerConfiguration()
    /// How long running jobs may take to finish once a shutdown begins.
    public var shutdownGrace: Duration = .seconds(25)
    /// The seed's upper-casing TCP echo service, off unless a port is given.
    public var echoPort: Int?
    public var echo = LineEchoServer.Configuration()
    /// The outbound client for fetch jobs: its SSRF policy and egress proxy.
    /// Webhook delivery: threads, timeouts, per-host limit, backlog and retry schedule.
    public var webhooks = WebhookDeliverer.Configuration()
    /// The operator's `--webhook-secret`, used for webhooks registered without one.
    public var webhookDefaultSecret: String?
    public var outbound = OutboundHTTPClient.Configuration(policy: AddressPolicy(), userAgent: "jobpool/\(JobpoolVersion.current)")

    public init() {}
}
