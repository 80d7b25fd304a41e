import JobAPI
import Logging
import Synchronization

/// The HTTP front end: the last service up, so that no request arrives before the parts it
/// needs run, and the first down.
final class HTTPService: BlockingService {
    private let frontEnd: APIFrontEnd
    private let drain: WorkDrain
    private let configuration: ServerConfiguration
    private let logger: Logger
    private let ports = Mutex<APIFrontEnd.BoundPorts?>(nil)

    init(frontEnd: APIFrontEnd, drain: WorkDrain, configuration: ServerConfiguration, logger: Logger) {
        self.frontEnd = frontEnd
        self.drain = drain
        self.configuration = configuration
        self.logger = logger
    }

    var name: String { "HTTP server" }

    /// Binds the listeners; connections wait in the kernel's backlog until ``start()``.
    func bind() throws -> APIFrontEnd.BoundPorts {
        let bound = try frontEnd.bind()
        ports.withLock { $0 = bound }
        return bound
    }

    /// Serves, and says where: tests, scripts and operators read the port from this line.
    func start() {
        frontEnd.start()
        guard let ports = ports.withLock({ $0 }) else { return }
        let host = configuration.host.contains(":") ? "[\(configuration.host)]" : configuration.host
        logger.info("listening on http://\(host):\(ports.http)",
                    metadata: ["workers": .stringConvertible(configuration.executor.workers),
                               "max_queued": .stringConvertible(configuration.executor.maxQueued)])
        if let echo = ports.echo { logger.info("echo service listening on tcp://\(host):\(echo)") }
    }

    /// Drains: new submissions get 503 while the listener stays open, running jobs get the
    /// grace period, and parked waiters get their jobs' final states as they finish; those
    /// still waiting when the grace period ends get their jobs as they stand, before those jobs
    /// are interrupted. Then the loop stops.
    func stop() {
        logger.info("Draining", metadata: ["grace_seconds": .stringConvertible(Int(configuration.shutdownGrace.components.seconds))])
        frontEnd.beginDrain()
        drain.run(beforeInterrupting: { [frontEnd] in frontEnd.answerParkedRequests() })
        frontEnd.stop()
    }

    /// Frees the listeners of a front end that was bound but never started.
    func close() { frontEnd.stop() }
}
