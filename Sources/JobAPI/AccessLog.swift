import Dispatch
import Foundation
import JobCore
import CoreMetrics
import Logging
import Synchronization

/// The access log, written off the event loop.
///
/// The loop only appends a small record per request; a thread of its own turns records into
/// `info` log lines, every 50 ms or when a quarter of the queue has filled. It is not woken per
/// record: on a busy server that would cost a futex wake and a context switch every few
/// requests, more than the line itself. The queue is bounded: past ``capacity`` a record is
/// dropped and counted in `jobpool_access_log_dropped_total`, so a slow log reader can cost
/// lines but never memory or loop time. ``stop()`` writes every record that was queued before it.
///
/// A ``Sink`` (the executable passes one that formats lines itself and writes each batch at
/// once) replaces the per-line trip through swift-log, whose metadata dictionaries were most of
/// an access line's cost.
final class AccessLog: Sendable {
    typealias Entry = AccessLogEntry
    /// Takes a batch of records, in order, on the access log's thread.
    typealias Sink = @Sendable ([AccessLogEntry]) -> Void

    let capacity: Int
    /// How long a line may wait before it is written.
    static let interval = Duration.milliseconds(50)
    private let logger: Logger
    private let sink: Sink?
    private let dropped: Counter
    private struct State {
        var pending: [Entry] = []
        var isStopping = false
    }
    private let state = Mutex(State())
    private let wake = DispatchSemaphore(value: 0)
    private let exited = DispatchSemaphore(value: 0)

    init(logger: Logger, metrics: JobMetrics, sink: Sink? = nil, capacity: Int = 65_536) {
        self.logger = logger
        self.sink = sink
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
            return .queued(wake: state.pending.count == capacity / 4)
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
            _ = wake.wait(timeout: .now() + Self.interval.dispatchInterval)
            let (batch, stopping) = state.withLock { state in
                defer { state.pending.removeAll(keepingCapacity: true) }
                return (state.pending, state.isStopping)
            }
            if let sink {
                if !batch.isEmpty { sink(batch) }
                if stopping { return }
                continue
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

/// One request, as the access log records it.
public struct AccessLogEntry: Sendable {
    public var requestID: String
    public var method: String
    /// The route's pattern (`/v1/jobs/{id}`), never the path with its IDs.
    public var route: String
    public var status: Int
    public var elapsed: Duration
    /// When the reply went out: the line's time, whenever the line is written.
    public var time: Date
}
