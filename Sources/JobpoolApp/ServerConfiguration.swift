import EventHTTP
import Foundation
import JobAPI
import JobCore
import OutboundHTTP
import Postgres
import Webhooks

/// Everything `jobpool serve` can be told, with the defaults a new user gets: the one value
/// the executable fills from flags and environment and the tests build directly, so that both
/// get the same service. Settings that follow from others (a per-tenant share of the queue, how
/// often retention looks) are worked out here, never by the executable.
///
/// The front end's settings read and write through this value too: `configuration.port` is
/// `configuration.frontEnd.port`.
///
/// ```swift
/// var configuration = ServerConfiguration()
/// configuration.store = .memory
/// configuration.port = 0
/// configuration.executor.workers = 2
/// let server = try JobpoolServer(configuration: configuration, logger: logger)
/// ```
@dynamicMemberLookup
public struct ServerConfiguration: Sendable {
    /// Where jobs are kept.
    public enum Store: Sendable, Equatable {
        /// Nothing survives a restart: for throwaway runs and tests.
        case memory
        /// A SQLite file, created (with its folder) if missing.
        case sqlite(path: String)
        /// A PostgreSQL database, by its libpq URI (`postgres://user:password@host/db`); the
        /// schema is made or migrated at start.
        case postgres(url: String)

        /// How the store is named in logs: its kind and, for a file, its absolute path; a
        /// database's URI with its password masked.
        public var description: String {
            switch self {
            case .memory: return "memory"
            case .sqlite(let path): return "sqlite:" + URL(fileURLWithPath: path).standardizedFileURL.path
            case .postgres(let url): return PostgresConnectionString(url).redacted
            }
        }

        /// True for a store several nodes share (PostgreSQL): jobs submitted on one node may run
        /// on another, so a node with no workers (`--workers 0`) makes sense only here.
        public var isShared: Bool {
            if case .postgres = self { return true }
            return false
        }

        /// The store's kind as `--store` names it: `memory`, `sqlite` or `postgres`.
        public var kindName: String {
            switch self {
            case .memory: return "memory"
            case .sqlite: return "sqlite"
            case .postgres: return "postgres"
            }
        }

        /// `text` with any database password in it masked, for a message about a value that
        /// did not parse.
        public static func redacted(_ text: String) -> String { PostgresConnectionString.redact(text) }

        /// Parses `memory`, `sqlite:PATH`, or a `postgres://` or `postgresql://` URI.
        public init?(_ text: String) {
            if text == "memory" { self = .memory; return }
            if PostgresConnectionString.isPostgresURI(text) { self = .postgres(url: text); return }
            guard text.hasPrefix("sqlite:"), text.count > 7 else { return nil }
            self = .sqlite(path: String(text.dropFirst(7)))
        }
    }

    public var store = Store.sqlite(path: "./data/jobpool.sqlite")
    /// The most jobs `--store memory` holds, live and finished; past it the oldest finished
    /// jobs are evicted (counted in `jobpool_memory_store_evictions_total`).
    public var memoryMaxJobs = 1_000_000
    /// With a PostgreSQL store: how often this node renews its lease, and for how long it holds
    /// (`--heartbeat-seconds`, `--lease-seconds`).
    public var nodeLease = NodeLeaseSettings()
    /// How long a queued job waits to gain one priority level, in the store's claim order.
    public var priorityAgingStep: Duration = .seconds(10)
    /// How long finished jobs are kept before retention removes them.
    public var retention: Duration = .seconds(7 * 86400)
    /// How often retention looks for jobs to remove; nil for a tenth of ``retention``, from
    /// 0.1 s to 60 s, so that a short retention is kept to closely.
    public var retentionSweepInterval: Duration?
    /// The worker pool. Its `maxQueuedPerOwner` nil means half of `maxQueued` here (at least 1),
    /// `--max-queued-per-tenant`'s default, so that one tenant cannot fill the queue for all.
    public var executor = JobExecutor.Configuration()
    /// How long running jobs may take to finish once a shutdown begins.
    public var shutdownGrace: Duration = .seconds(25)
    /// Webhook delivery: threads, timeouts, per-host limit, backlog and retry schedule. Its user
    /// agent is the outbound client's.
    public var webhooks = WebhookDeliverer.Configuration()
    /// The outbound client for fetch jobs and webhooks: its SSRF policy and egress proxy.
    public var outbound = OutboundHTTPClient.Configuration(policy: AddressPolicy(), userAgent: "jobpool/\(JobpoolVersion.current)")
    /// The HTTP front end: address, limits, API keys, the echo service.
    public var frontEnd = FrontEndConfiguration()

    public init() {}

    /// A front-end setting, such as `host`, `port`, `http`, `api` or `apiKeys`.
    public subscript<Value>(dynamicMember keyPath: WritableKeyPath<FrontEndConfiguration, Value>) -> Value {
        get { frontEnd[keyPath: keyPath] }
        set { frontEnd[keyPath: keyPath] = newValue }
    }

    /// The executor's settings with the per-tenant share worked out.
    public var resolvedExecutor: JobExecutor.Configuration {
        var executor = self.executor
        if executor.maxQueuedPerOwner == nil { executor.maxQueuedPerOwner = max(1, executor.maxQueued / 2) }
        return executor
    }

    /// How often retention looks, worked out from ``retention`` unless set.
    public var resolvedRetentionSweepInterval: Duration {
        retentionSweepInterval ?? min(.seconds(60), max(.milliseconds(100), retention / 10))
    }

    /// The deliverer's settings, with the outbound client's user agent.
    public var resolvedWebhooks: WebhookDeliverer.Configuration {
        var webhooks = self.webhooks
        webhooks.userAgent = outbound.userAgent
        return webhooks
    }
}
