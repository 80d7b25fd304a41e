import EventHTTP
import JobAPI
import JobCore
import JobKinds
import Logging
import OutboundHTTP
import PostgresStore
import Prometheus
import SQLiteStore
import Synchronization
import Webhooks

/// The whole service, built from one ``ServerConfiguration``: the store, the job executor and
/// its worker pool, the webhook deliverer, webhook claims, retention, and the HTTP front end. `jobpool serve`
/// and the tests build it the same way.
///
/// Its long-lived parts are services, started in dependency order (store writer, worker pool,
/// webhook deliverer, webhook claims, retention, HTTP server) and stopped in reverse. The executable runs them
/// in a swift-service-lifecycle `ServiceGroup`, which owns SIGTERM and SIGINT:
///
/// ```swift
/// let server = try JobpoolServer(configuration: configuration, logger: logger) // takes the store's lock
/// try server.open()                  // binds, then recovers what the store kept
/// try await server.run()             // starts the services; on SIGTERM drains and stops them
/// ```
///
/// Tests start and stop the same services one after another, without signals:
///
/// ```swift
/// let ports = try server.start()     // open(), then every service started in order
/// server.shutdown()                  // every service stopped in reverse; blocks until done
/// ```
public final class JobpoolServer: Sendable {
    public typealias BoundPorts = APIFrontEnd.BoundPorts

    enum Phase {
        /// Built: the store is open (and locked), nothing else has happened.
        case created
        /// ``open()`` is binding and recovering.
        case opening
        /// ``open()`` bound the ports and recovered the store's work; no service runs yet.
        case open(BoundPorts)
        /// The services were started, by ``start()`` or ``run()``.
        case running
        /// ``shutdown()`` is stopping the services.
        case stopping
        /// Every service has stopped, or a failed ``open()`` let go of everything.
        case stopped
    }

    public let configuration: ServerConfiguration
    public let executor: JobExecutor
    let store: any JobStore
    let webhooks: WebhookDeliverer
    private let frontEnd: APIFrontEnd
    let http: HTTPService
    /// In dependency order: each service needs only those before it.
    let services: [any BlockingService]
    let phase = Mutex(Phase.created)
    let logger: Logger

    /// Builds the parts; no thread starts. Without a `store`, opens the one the configuration
    /// names, taking its lock (throwing, with a message for the operator, if another process
    /// holds it, or if the file is damaged or from a newer jobpool). Without `kinds`, jobs may be
    /// `write_code` and `fetch_url`. The server owns the store from now on and closes it.
    public init(configuration: ServerConfiguration, kinds: [any JobKind]? = nil, store: (any JobStore)? = nil,
                logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        let store = try store ?? Self.openStore(configuration, logger: logger)
        self.store = store
        do {
            let loop = try EventLoop()
            let registry = PrometheusCollectorRegistry()
            let metrics = JobMetrics(factory: PrometheusMetricsFactory(registry: registry))
            let outbound = OutboundHTTPClient(configuration: configuration.outbound)
            // Job changes and webhook outcomes, announced in one place for GET /v1/events.
            let changes = JobChangeFeed()
            let webhooks = WebhookDeliverer(configuration: configuration.resolvedWebhooks, client: outbound, logger: logger,
                                            metrics: metrics, persist: { store.apply($0, whenDurable: $1) },
                                            claimant: { store.webhookClaimant }, changes: changes,
                                            renderBody: APIFrontEnd.webhookEventBody(type:job:))
            // Submissions arrive on the loop thread; waking a worker once per loop batch instead
            // of once per request saves a futex wake and a context switch per job under load.
            let executor = JobExecutor(configuration: configuration.resolvedExecutor,
                                       kinds: kinds ?? [WriteCode(), FetchURL(client: outbound, metrics: metrics)],
                                       store: store, logger: logger, deferWakeUp: { wakeUp in loop.execute(wakeUp) },
                                       completionHandler: webhooks, metrics: metrics, changes: changes)
            let frontEnd = APIFrontEnd(configuration: configuration.frontEnd, loop: loop, executor: executor, webhooks: webhooks,
                                       outbound: outbound, metricsRegistry: registry, logger: logger)
            let drain = WorkDrain(executor: executor, grace: configuration.shutdownGrace)
            let http = HTTPService(frontEnd: frontEnd, drain: drain, configuration: configuration, logger: logger)
            self.webhooks = webhooks
            self.executor = executor
            self.frontEnd = frontEnd
            self.http = http
            services = [
                StoreService(store: store),
                WorkerPoolService(executor: executor, drain: drain),
                webhooks,
                WebhookClaimer(store: store, executor: executor, webhooks: webhooks, logger: logger),
                RetentionSweeper(executor: executor, retention: configuration.retention,
                                 interval: configuration.resolvedRetentionSweepInterval, logger: logger),
                http,
            ]
        } catch {
            // The lock is let go of at once: this process will not use the store.
            store.close()
            throw error
        }
    }

    /// Requests waiting for jobs right now (`Prefer: wait`, `?wait=`, cancels of running jobs).
    public var parkedRequests: Int { frontEnd.parkedRequests }

    /// Jobs whose webhook delivery records are held in memory; retention prunes them with their jobs.
    public var webhookRecordCount: Int { webhooks.recordCount }

    /// True when no webhook delivery is queued, scheduled or in flight.
    public var webhooksIdle: Bool { webhooks.isIdle }

    /// True when the store takes writes (readiness).
    public var isStoreWritable: Bool { store.isWritable }

    private static func openStore(_ configuration: ServerConfiguration, logger: Logger) throws -> any JobStore {
        switch configuration.store {
        case .memory: return MemoryJobStore(maxJobs: configuration.memoryMaxJobs, agingStep: configuration.priorityAgingStep)
        case .sqlite(let path): return try SQLiteJobStore(path: path, logger: logger, agingStep: configuration.priorityAgingStep)
        case .postgres(let url):
            return try PostgresJobStore(url: url, logger: logger, agingStep: configuration.priorityAgingStep, lease: configuration.nodeLease)
        }
    }
}
