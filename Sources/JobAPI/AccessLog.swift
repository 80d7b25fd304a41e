import Dispatch
import Foundation
import JobCore
import CoreMetrics
import Logging
import Synchronization

/// The access log, written off the event loop.
///
/// The loop only appends a small record per request; a thread of its own turns records into
/// `info` log lines. The queue is bounded: past ``capacity`` a record is dropped and counted in
/// `jobpool_access_log_dropped_total`, so a slow log reader can cost lines but never memory
/// or loop time. ``stop()`` writes every record that was queued before it.
final class AccessLog: Sendable {
    struct Entry: Sendable {
        var requestID: String
        var method: String
        var route: String
        var status: Int
        var elapsed: Duration
    }

    let capacity: Int
    private let logger: Logger
    private let dropped: Counter
    private struct State {
        var pending: [Entry] = []
        var isStopping = false
    }
    private let state = Mutex(State())
    private let wake = DispatchSemaphore(value: 0)
    private let exited = DispatchSemaphore(value: 0)

    init(logger: Logger, metrics: JobMetrics, capacity: Int = 65_536) {
        self.logger = logger
        self.capacity = capacity
        self.dropped = metrics.counter("jobpool_access_log_dropped_total", [])
    }

    /// Starts the writing thread. Call once.
    func start() {
        let thread = Thread { [self] in
            writeUntilStopped()
            exited.signal()
        }
        thread.name = "jobpool-access-log"
        thread.start()
    }

    /// Queues one request's line. Never blocks: a full queue drops the record and counts it.
    func record(_ entry: Entry) {
        enum Outcome { case queued(wake: Bool), dropped }
        let outcome = state.withLock { state -> Outcome in
            guard state.pending.count < capacity, !state.isStopping else { return .dropped }
            state.pending.append(entry)
            return .queued(wake: state.pending.count == 1)
        }
        switch outcome {
        case .queued(let wakeWriter): if wakeWriter { wake.signal() }
        case .dropped: dropped.increment()
        }
    }

    /// Writes what is queued, then stops the thread. Blocks until done.
    func stop() {
        state.withLock { $0.isStopping = true }
        wake.signal()
        _ = exited.wait(timeout: .now() + .seconds(10))
    }

    private func writeUntilStopped() {
        while true {
            wake.wait()
            let (batch, stopping) = state.withLock { state in
                defer { state.pending.removeAll(keepingCapacity: true) }
                return (state.pending, state.isStopping)
            }
            for entry in batch {
                logger.info("request", metadata: [
                    "request.id": "\(entry.requestID)", "method": "\(entry.method)", "route": "\(entry.route)",
                    "status": .stringConvertible(entry.status),
                    "duration_ms": .stringConvertible(Double(entry.elapsed.clampedMicroseconds) / 1000),
                ])
            }
            if stopping { return }
        }
    }
}
