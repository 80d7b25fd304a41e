import EventHTTP
import Foundation
import JobCore
import JobKinds
import OutboundHTTP
import SQLiteStore
import Webhooks
import Logging
import Prometheus
import Synchronization

/// The whole service: an event loop thread serving HTTP (and optionally the echo service) in
/// front of a ``JobExecutor``. Both `jobpool serve` and the tests build it the same way.
///
/// ```swift
/// let server = try JobpoolServer(configuration: configuration, logger: logger)
/// let ports = try server.start()      // binds, starts the workers and the loop thread
/// server.shutdown()                   // drains, then stops; blocks until done
/// ```
public final class JobpoolServer: Sendable {
    /// The ports actually bound.
    public struct BoundPorts: Sendable {
        public var http: Int
        public var echo: Int?
    }

    public let configuration: ServerConfiguration
    public let executor: JobExecutor
    private let webhooks: WebhookDeliverer
    private let outbound: OutboundHTTPClient
    private let store: any JobStore
    /// This server's Prometheus registry, read by `GET /metrics`.
    let metricsRegistry = PrometheusCollectorRegistry()
    private let retention: RetentionSweeper
    private let logger: Logger
    private let loop: EventLoop
    /// The loop-owned parts, created in `start` and used on the loop thread afterwards.
    private let frontEnd: Mutex<LoopBound<FrontEnd>?> = Mutex(nil)
    private let phase = Mutex(Phase.created)
    private let loopExited = DispatchSemaphore(value: 0)
    private let waiterGauge = WaiterGauge()
    private let accessLog: AccessLog?

    /// Requests waiting for jobs right now (`Prefer: wait`, `?wait=`, cancels of running jobs).
    public var parkedRequests: Int { waiterGauge.value }

    /// Jobs whose webhook delivery records are held in memory; retention prunes them with their jobs.
    public var webhookRecordCount: Int { webhooks.recordCount }

    /// True when no webhook delivery is queued, scheduled or in flight.
    public var webhooksIdle: Bool { webhooks.isIdle }

    private enum Phase { case created, running, stopping, stopped }

    /// The HTTP and echo servers and the API handler: loop-thread objects.
    private final class FrontEnd {
        let handler: APIHandler
        let http: HTTPServer
        let echo: LineEchoServer?

        init(handler: APIHandler, http: HTTPServer, echo: LineEchoServer?) {
            self.handler = handler
            self.http = http
            self.echo = echo
        }
    }

    /// Opens the store and builds the parts. Throws, with a message for the operator, if the
    /// store cannot be opened (a damaged file, or one from a newer jobpool).
    public init(configuration: ServerConfiguration, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        let loop = try EventLoop()
        self.loop = loop
        let store: any JobStore
        switch configuration.store {
        case .memory: store = MemoryJobStore(maxJobs: configuration.memoryMaxJobs)
        case .sqlite(let path): store = try SQLiteJobStore(path: path, logger: logger)
        }
        self.store = store
        let metrics = JobMetrics(factory: PrometheusMetricsFactory(registry: metricsRegistry))
        let outbound = OutboundHTTPClient(configuration: configuration.outbound)
        self.outbound = outbound
        var webhookConfiguration = configuration.webhooks
        webhookConfiguration.userAgent = configuration.outbound.userAgent
        let webhooks = WebhookDeliverer(configuration: webhookConfiguration, client: outbound, logger: logger, metrics: metrics,
                                        persist: { change in store.apply(change, whenDurable: nil) }) { type, final in
            var writer = JSONWriter()
            writer.webhookEvent(type: type, job: final)
            return writer.bytes
        }
        self.webhooks = webhooks
        // Submissions arrive on the loop thread; waking a worker once per loop batch instead
        // of once per request saves a futex wake and a context switch per job under load.
        let executor = JobExecutor(configuration: configuration.executor,
                                   kinds: [WriteCode(), FetchURL(client: outbound, metrics: metrics)], store: store, logger: logger,
                                   deferWakeUp: { wakeUp in loop.execute(wakeUp) }, completionHandler: webhooks, metrics: metrics)
        self.executor = executor
        self.accessLog = logger.logLevel <= .info
            ? AccessLog(logger: logger, metrics: metrics, sink: configuration.accessLogSink) : nil
        self.retention = RetentionSweeper(executor: executor, retention: configuration.retention,
                                          interval: configuration.retentionSweepInterval, logger: logger)
    }

    /// Binds the listeners, then recovers what the store kept, then starts the workers and the
    /// loop thread. Call once. A start that fails (a port in use, say) leaves the store as it
    /// found it and lets go of it.
    public func start() throws -> BoundPorts {
        try phase.withLock { phase in
            guard phase == .created else { throw EventError.libevent("server already started") }
            phase = .running
        }
        raiseOpenFileLimit(toFit: configuration.http.maxConnections + configuration.echo.maxConnections)
        let ports: BoundPorts
        do {
            ports = try bindListeners()
            // Only now, with the store's lock held (since init) and the ports ours, may this
            // process take over jobs that an earlier process left running.
            try recover()
        } catch {
            frontEnd.withLock { $0 = nil }
            store.close()
            phase.withLock { $0 = .stopped }
            throw error
        }
        accessLog?.start()
        webhooks.start()
        executor.start()
        retention.start()
        let thread = Thread { [loop, loopExited] in
            loop.run()
            loopExited.signal()
        }
        thread.name = "jobpool-event-loop"
        thread.start()
        return ports
    }

    /// Builds the loop-owned front end and binds its listeners. Connections wait in the
    /// kernel's backlog until the loop thread starts.
    private func bindListeners() throws -> BoundPorts {
        // The loop is not running yet, so building loop-owned objects on this thread is safe.
        let handler = APIHandler(loop: loop, executor: executor, webhooks: webhooks, outbound: outbound,
                                 configuration: configuration.api, webhookDefaultSecret: configuration.webhookDefaultSecret,
                                 waiterGauge: waiterGauge, metricsRegistry: metricsRegistry,
                                 access: AccessControl(apiKeys: configuration.apiKeys, metricsKey: configuration.metricsAPIKey,
                                                       publicMetrics: configuration.publicMetrics),
                                 accessLog: accessLog, logger: logger)
        let http = try HTTPServer(loop: loop, configuration: configuration.http) { request in handler.handle(request) }
        let httpPort = try http.listen(host: configuration.host, port: configuration.port)
        var echo: LineEchoServer?
        var echoPort: Int?
        if let port = configuration.echoPort {
            let server = try LineEchoServer(loop: loop, configuration: configuration.echo)
            server.onLineTooLong = { [logger, limit = configuration.echo.maxLineLength] in
                logger.info("Echo client sent a line over the cap; sent an error line and closing", metadata: ["limit_bytes": .stringConvertible(limit)])
            }
            echoPort = try server.listen(host: configuration.host, port: port)
            echo = server
        }
        frontEnd.withLock { $0 = LoopBound(FrontEnd(handler: handler, http: http, echo: echo), on: loop) }
        return BoundPorts(http: httpPort, echo: echoPort)
    }

    /// Drains and stops: new submissions get 503 while the listener stays open, running jobs
    /// get the grace period, and parked waiters get their jobs' final states as they finish
    /// (those still waiting when the grace ends get their jobs as they stand); then the loop
    /// stops. Blocks until done; safe to call more than once and from any thread but the loop's.
    public func shutdown() {
        let first = phase.withLock { phase -> Bool in
            guard phase == .running else { return false }
            phase = .stopping
            return true
        }
        guard first, let frontEnd = frontEnd.withLock({ $0 }) else { return }
        logger.info("Draining", metadata: ["grace_seconds": .stringConvertible(Int(configuration.shutdownGrace.components.seconds))])
        loop.execute { frontEnd.value.handler.beginDrain() }
        executor.drain(grace: configuration.shutdownGrace)
        // Answer whatever is still parked, then stop the loop.
        loop.execute { [loop] in
            frontEnd.value.handler.finishDrain()
            loop.stop()
        }
        loopExited.wait()
        // Free the listeners and connections now, with the loop stopped, so that clients see a
        // refused connection instead of a silent one for as long as this object lives.
        self.frontEnd.withLock { $0 = nil }
        // Every request has had its reply (the loop has stopped), so its line is queued.
        accessLog?.stop()
        retention.stop()
        webhooks.stop()
        executor.reader.stop()
        store.close()
        phase.withLock { $0 = .stopped }
        logger.info("Stopped")
    }

    /// Loads what the store kept and resumes it, before anything runs.
    private func recover() throws {
        let stored = try store.loadUnfinished()
        let report = executor.recover(stored)
        // Pending events belong to finished jobs, which the store answers for (this is start-up,
        // before any request: a blocking read is fine here).
        webhooks.restore(stored.webhookEvents) { [executor] id in (try? executor.loadJob(withID: id)) ?? nil }
        guard !stored.jobs.isEmpty || !stored.webhookEvents.isEmpty else { return }
        logger.info("Recovered unfinished work from the store", metadata: [
            "jobs": "\(report.loaded)", "queued": "\(report.resumedQueued)",
            "requeued_after_crash": "\(report.requeuedAfterCrash)", "failed_out_of_attempts": "\(report.failedOutOfAttempts)",
            "pending_webhooks": "\(stored.webhookEvents.filter { $0.state == .pending }.count)",
        ])
    }

    /// True when the store takes writes (readiness).
    public var isStoreWritable: Bool { store.isWritable }

    /// Blocks until SIGINT or SIGTERM arrives. The signals are handled by the event loop.
    public func waitForTerminationSignal() -> Int32 {
        let received = DispatchSemaphore(value: 0)
        let signalNumber = Mutex<Int32>(0)
        loop.execute { [loop] in
            for number in [SIGINT, SIGTERM] {
                loop.onSignal(number) { signalNumber.withLock { $0 = number }; received.signal() }
            }
        }
        received.wait()
        return signalNumber.withLock { $0 }
    }
}
