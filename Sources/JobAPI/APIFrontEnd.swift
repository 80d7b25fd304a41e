import EventHTTP
import Foundation
import JobCore
import Logging
import OutboundHTTP
import Prometheus
import Synchronization
import Webhooks

/// The HTTP face of jobpool: the REST API (and the optional echo service) served by one
/// event-loop thread in front of a ``JobExecutor``. It knows jobs only through the executor, and
/// no store.
///
/// ```swift
/// let loop = try EventLoop()
/// let frontEnd = APIFrontEnd(configuration: configuration, loop: loop, executor: executor, webhooks: webhooks,
///                            outbound: outbound, metricsRegistry: registry, logger: logger)
/// let ports = try frontEnd.bind()  // listening; connections wait in the kernel's backlog
/// frontEnd.start()                 // the loop thread serves them
/// frontEnd.beginDrain()            // submissions get 503; parked waiters keep waiting
/// frontEnd.stop()                  // answers the waiters left, stops the loop, closes the listeners
/// ```
public final class APIFrontEnd: Sendable {
    /// The ports actually bound.
    public struct BoundPorts: Sendable, Equatable {
        public var http: Int
        public var echo: Int?
    }

    private enum Phase { case created, bound, running, draining, stopped }

    /// The HTTP and echo servers and the API handler: loop-thread objects.
    private final class LoopParts {
        let handler: APIHandler
        let http: HTTPServer
        let echo: LineEchoServer?

        init(handler: APIHandler, http: HTTPServer, echo: LineEchoServer?) {
            self.handler = handler
            self.http = http
            self.echo = echo
        }
    }

    private let configuration: FrontEndConfiguration
    private let executor: JobExecutor
    private let webhooks: WebhookDeliverer
    private let outbound: OutboundHTTPClient
    private let metricsRegistry: PrometheusCollectorRegistry
    private let logger: Logger
    private let loop: EventLoop
    private let accessLog: AccessLog?
    private let waiterGauge = WaiterGauge()
    /// Built by ``bind()``, used on the loop thread afterwards, freed by ``stop()``.
    private let parts: Mutex<LoopBound<LoopParts>?> = Mutex(nil)
    private let phase = Mutex(Phase.created)
    private let loopExited = DispatchSemaphore(value: 0)

    /// Nothing listens and no thread runs until ``bind()`` and ``start()``. The front end runs
    /// `loop` on a thread of its own; the executor may already use it to defer wake-ups (see
    /// ``JobExecutor``'s `deferWakeUp`). `metricsRegistry` holds the executor's metrics, served
    /// at `GET /metrics`.
    public init(configuration: FrontEndConfiguration, loop: EventLoop, executor: JobExecutor, webhooks: WebhookDeliverer,
                outbound: OutboundHTTPClient, metricsRegistry: PrometheusCollectorRegistry, logger: Logger) {
        self.configuration = configuration
        self.executor = executor
        self.webhooks = webhooks
        self.outbound = outbound
        self.metricsRegistry = metricsRegistry
        self.logger = logger
        self.loop = loop
        self.accessLog = logger.logLevel <= .info
            ? AccessLog(logger: logger, metrics: executor.metrics, sink: configuration.accessLogSink) : nil
    }

    /// Requests waiting for jobs right now (`Prefer: wait`, `?wait=`, cancels of running jobs).
    public var parkedRequests: Int { waiterGauge.value }

    /// Builds the loop-owned parts and binds the listeners. Call once, before ``start()``.
    public func bind() throws -> BoundPorts {
        try phase.withLock { phase in
            guard phase == .created else { throw EventError.libevent("the front end is already bound") }
            phase = .bound
        }
        raiseOpenFileLimit(toFit: configuration.http.maxConnections + configuration.echo.maxConnections)
        // The loop is not running yet, so building loop-owned objects on this thread is safe.
        let handler = APIHandler(loop: loop, executor: executor, webhooks: webhooks, outbound: outbound,
                                 configuration: configuration.api, webhookDefaultSecret: configuration.webhookDefaultSecret,
                                 waiterGauge: waiterGauge, metricsRegistry: metricsRegistry,
                                 access: AccessControl(apiKeys: configuration.apiKeys, metricsKey: configuration.metricsAPIKey,
                                                       publicMetrics: configuration.publicMetrics),
                                 accessLog: accessLog, logger: logger)
        let http = try HTTPServer(loop: loop, configuration: configuration.effectiveHTTP) { request in handler.handle(request) }
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
        parts.withLock { $0 = LoopBound(LoopParts(handler: handler, http: http, echo: echo), on: loop) }
        return BoundPorts(http: httpPort, echo: echoPort)
    }

    /// Starts the access log and the loop thread, which serves the connections waiting since
    /// ``bind()``.
    public func start() {
        let first = phase.withLock { phase -> Bool in
            guard phase == .bound else { return false }
            phase = .running
            return true
        }
        guard first else { return }
        accessLog?.start()
        let thread = Thread { [loop, loopExited] in
            loop.run()
            loopExited.signal()
        }
        thread.name = "jobpool-event-loop"
        thread.start()
    }

    /// Starts a drain: new submissions and new waits get 503 or an answer at once, `/readyz`
    /// says so, and event streams close (their clients resume elsewhere with `Last-Event-ID`).
    /// Parked waiters keep waiting, so that a job finishing in the grace period reaches them with
    /// its final state. The listener stays open. Returns once the loop has begun it; never call
    /// it on the loop thread.
    public func beginDrain() {
        let first = phase.withLock { phase -> Bool in
            guard phase == .running else { return false }
            phase = .draining
            return true
        }
        guard first, let parts = parts.withLock({ $0 }) else { return }
        let begun = DispatchSemaphore(value: 0)
        loop.execute {
            parts.value.handler.beginDrain()
            begun.signal()
        }
        begun.wait()
    }

    /// Answers every request still parked with its job as it stands, now: the grace period is
    /// over and the jobs they wait on are about to be interrupted. (A job interrupted by a drain
    /// runs again after the restart with a durable store, so "failed, interrupted" would mislead
    /// its waiter.) Blocks until the loop has done it; never call it on the loop thread.
    public func answerParkedRequests() {
        guard phase.withLock({ $0 == .draining }), let parts = parts.withLock({ $0 }) else { return }
        let answered = DispatchSemaphore(value: 0)
        loop.execute {
            parts.value.handler.finishDrain()
            answered.signal()
        }
        answered.wait()
    }

    /// Answers every request still parked with its job as it stands, stops the loop, and frees
    /// the listeners and connections, so that clients see a refused connection from then on.
    /// Blocks until done; safe to call more than once, and after a ``bind()`` that was never
    /// started. Never call it on the loop thread.
    public func stop() {
        let previous = phase.withLock { phase -> Phase in
            defer { phase = .stopped }
            return phase
        }
        switch previous {
        case .created, .stopped:
            return
        case .bound:
            parts.withLock { $0 = nil }
        case .running, .draining:
            guard let parts = parts.withLock({ $0 }) else { return }
            loop.execute { [loop] in
                parts.value.handler.finishDrain()
                // The replies just sent leave on later loop turns; a client that does not read
                // them holds the stop back for 2 s at most.
                parts.value.http.whenRepliesSent(timeout: .seconds(2)) { loop.stop() }
            }
            loopExited.wait()
            self.parts.withLock { $0 = nil }
            // Every request has had its reply (the loop has stopped), so its line is queued.
            accessLog?.stop()
        }
    }

    /// A webhook event's body for a finished job: the API's own JSON for the job, which the
    /// deliverer freezes when the job finishes.
    public static func webhookEventBody(type: String, job: JobSnapshot) -> [UInt8] {
        var writer = JSONWriter()
        writer.webhookEvent(type: type, job: job)
        return writer.bytes
    }
}
