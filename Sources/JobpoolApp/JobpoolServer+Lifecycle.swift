import Foundation
import Logging
import ServiceLifecycle

extension JobpoolServer {
    /// Binds the listeners, then recovers what the store kept: the parts of a start that can
    /// fail, in the order lock (taken by `init`), bind, recover. Nothing runs yet; connections
    /// wait in the kernel's backlog. A failure (a port in use, say) leaves the store as it was
    /// and lets go of it.
    @discardableResult
    public func open() throws -> BoundPorts {
        try phase.withLock { phase in
            guard case .created = phase else { throw LifecycleError("the server was opened already") }
            phase = .opening
        }
        do {
            let ports = try http.bind()
            // Only now, with the store's lock held and the ports ours, may this process take
            // over jobs that an earlier process left running.
            try recover()
            phase.withLock { $0 = .open(ports) }
            return ports
        } catch {
            http.close()
            store.close()
            phase.withLock { $0 = .stopped }
            throw error
        }
    }

    /// Opens the server unless ``open()`` was called, then starts every service in dependency
    /// order: store writer, worker pool, webhook deliverer, webhook claims, retention, HTTP server. Returns
    /// once the server serves. For tests and other embedders; `jobpool serve` uses ``run()``.
    @discardableResult
    public func start() throws -> BoundPorts {
        let ports = try beginRunning()
        for service in services {
            service.start()
            logger.debug("Started", metadata: ["service": "\(service.name)"])
        }
        return ports
    }

    /// Stops every service in reverse order: the HTTP server drains (new submissions get 503,
    /// running jobs get the grace period, parked waiters their jobs' final states), then
    /// retention, the webhook deliverer, the worker pool, and the store. Blocks until done; safe
    /// to call more than once and from any thread but the loop's. For a server started with
    /// ``start()`` (or only opened).
    public func shutdown() {
        let previous = phase.withLock { phase -> Phase in
            let previous = phase
            switch phase {
            case .open, .running: phase = .stopping
            case .created, .opening, .stopping, .stopped: break
            }
            return previous
        }
        switch previous {
        case .open:
            http.close()
            store.close()
        case .running:
            for service in services.reversed() {
                service.stop()
                logger.debug("Stopped", metadata: ["service": "\(service.name)"])
            }
        case .created, .opening, .stopping, .stopped:
            return
        }
        phase.withLock { $0 = .stopped }
        logger.info("Stopped")
    }

    /// Opens the server unless ``open()`` was called, then runs its services in a
    /// swift-service-lifecycle `ServiceGroup`, which starts them in dependency order and, on
    /// SIGTERM or SIGINT, stops them in reverse as ``shutdown()`` does. Returns once every
    /// service has stopped. The group owns those two signals: nothing else in the process
    /// handles them.
    public func run() async throws {
        _ = try beginRunning()
        defer {
            phase.withLock { $0 = .stopped }
            logger.info("Stopped")
        }
        var previousStarted: StartGate?
        var lifecycle: [ServiceGroupConfiguration.ServiceConfiguration] = []
        for service in services {
            let started = StartGate()
            lifecycle.append(.init(service: ServiceLifecycleAdapter(service: service, previousStarted: previousStarted, started: started),
                                   serviceName: service.name))
            previousStarted = started
        }
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: lifecycle, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }

    /// Opens the server if it was not, and marks it running. Returns the bound ports.
    private func beginRunning() throws -> BoundPorts {
        if case .created = phase.withLock({ $0 }) { try open() }
        return try phase.withLock { phase in
            guard case .open(let ports) = phase else { throw LifecycleError("the server was started already, or stopped") }
            phase = .running
            return ports
        }
    }

    /// Loads what the store kept and resumes it, before anything runs.
    private func recover() throws {
        // The store takes back what a dead process left running, then hands over the rest.
        let requeued = try store.requeueInterrupted(at: Date())
        let stored = try store.loadUnfinished()
        let report = executor.recover(stored, requeuedAfterCrash: requeued)
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
}

/// A lifecycle call out of turn, such as a second ``JobpoolServer/start()``.
public struct LifecycleError: Error, CustomStringConvertible {
    public let description: String

    init(_ description: String) { self.description = description }
}
