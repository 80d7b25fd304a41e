import EventHTTP
import Foundation
import JobCore
import OutboundHTTP
import Webhooks

/// Everything `jobpool serve` can be told, with the defaults a new user gets. The executable
/// fills it from flags and environment; tests build it directly.
public struct ServerConfiguration: Sendable {
    /// Where jobs are kept.
    public enum Store: Sendable, Equatable {
        /// Nothing survives a restart: for throwaway runs and tests.
        case memory
        /// A SQLite file, created (with its folder) if missing.
        case sqlite(path: String)

        /// How the store is named in logs: its kind and, for a file, its absolute path.
        public var description: String {
            switch self {
            case .memory: return "memory"
            case .sqlite(let path): return "sqlite:" + URL(fileURLWithPath: path).standardizedFileURL.path
            }
        }

        /// Parses `memory` or `sqlite:PATH`.
        public init?(_ text: String) {
            if text == "memory" { self = .memory; return }
            guard text.hasPrefix("sqlite:"), text.count > 7 else { return nil }
            self = .sqlite(path: String(text.dropFirst(7)))
        }
    }

    public var store = Store.sqlite(path: "./data/jobpool.sqlite")
    /// The most jobs `--store memory` holds, live and finished; past it the oldest finished
    /// jobs are evicted (counted in `jobpool_memory_store_evictions_total`).
    public var memoryMaxJobs = 1_000_000
    /// Where access-log records go in batches, formatted by the caller; nil logs each request
    /// through the server's `Logger` at `info`. Either way, only when that level is enabled.
    public var accessLogSink: (@Sendable ([AccessLogEntry]) -> Void)?
    /// How long finished jobs are kept before retention removes them.
    public var retention: Duration = .seconds(7 * 86400)
    /// How often retention looks for jobs to remove.
    public var retentionSweepInterval: Duration = .seconds(60)
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
    /// API keys; when any is set, `/v1` routes need `Authorization: Bearer <key>` and each key
    /// sees only its own jobs.
    public var apiKeys: [String] = []
    /// When set, `/metrics` needs this key too.
    public var metricsAPIKey: String?
    /// With API keys on and no ``metricsAPIKey``, `/metrics` is closed (403) unless this is set.
    public var publicMetrics = false
    /// The operator's `--webhook-secret`, used for webhooks registered without one.
    public var webhookDefaultSecret: String?
    public var outbound = OutboundHTTPClient.Configuration(policy: AddressPolicy(), userAgent: "jobpool/\(JobpoolVersion.current)")

    public init() {}
}
