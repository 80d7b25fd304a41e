import Dispatch
import Foundation
import Glibc
import JobCore
import Synchronization

/// Standard error, written in batches by a thread of its own, every 50 ms or once 256 KiB have
/// gathered (a line may wait that long; a `kill -9` can lose the last 50 ms of lines).
///
/// A log line used to cost a `write(2)` on the thread that logged it; for the access log that
/// thread was the event loop, once per request, and it took a third of POST throughput. Here a
/// line is appended to a buffer, and one thread writes whatever has gathered with one system
/// call. The buffer is bounded: past ``capacity`` a line is dropped and counted (a stalled
/// reader of standard error must not grow memory without limit), and ``flush()`` writes
/// everything out, for a clean exit.
///
/// ```swift
/// LogOutput.standardError.write(Array("hello\n".utf8))
/// LogOutput.standardError.flush()
/// ```
final class LogOutput: Sendable {
    static let standardError = LogOutput(descriptor: STDERR_FILENO)

    /// Bytes that may wait to be written.
    let capacity = 8 << 20
    /// Gathered bytes that wake the writer before its next round.
    static let wakeThreshold = 256 << 10
    /// How long a line may wait before the writer's next round.
    static let interval = Duration.milliseconds(50)
    private let descriptor: Int32
    private struct State {
        var pending: [UInt8] = []
        var writerStarted = false
        var dropped = 0
        var onDrop: (@Sendable (Int) -> Void)?
    }
    private let state = Mutex(State())
    /// Held while a batch is taken and written, so that batches leave in the order they came.
    private let writing = Mutex(())
    private let wake = DispatchSemaphore(value: 0)

    private init(descriptor: Int32) {
        self.descriptor = descriptor
    }

    /// Lines dropped because the buffer was full, since the start.
    var droppedLines: Int { state.withLock { $0.dropped } }

    /// Called with each count of dropped lines (for a metric); set once the metrics exist.
    func onDrop(_ report: @escaping @Sendable (Int) -> Void) {
        state.withLock { $0.onDrop = report }
    }

    /// Queues `line` (which ends in a newline) for writing.
    func write(_ line: [UInt8]) {
        enum Outcome { case queued(wake: Bool, startWriter: Bool), dropped((@Sendable (Int) -> Void)?) }
        let outcome = state.withLock { state -> Outcome in
            guard state.pending.count + line.count <= capacity else {
                state.dropped += 1
                return .dropped(state.onDrop)
            }
            let before = state.pending.count
            state.pending.append(contentsOf: line)
            defer { state.writerStarted = true }
            // Woken only when the batch grows past a threshold, not per line (see `interval`).
            return .queued(wake: before < Self.wakeThreshold && state.pending.count >= Self.wakeThreshold,
                           startWriter: !state.writerStarted)
        }
        switch outcome {
        case .queued(let wakeWriter, let startWriter):
            if startWriter { startWriterThread() }
            if wakeWriter { wake.signal() }
        case .dropped(let report):
            report?(1)
        }
    }

    /// Writes everything queued so far, on the calling thread; returns once it is written.
    func flush() {
        writing.withLock { _ in writeOut(state.withLock { state in
            defer { state.pending.removeAll(keepingCapacity: true) }
            return state.pending
        }) }
    }

    private func startWriterThread() {
        let thread = Thread { [self] in
            while true {
                _ = wake.wait(timeout: .now() + Self.interval.dispatchInterval)
                flush()
            }
        }
        thread.name = "jobpool-log-writer"
        thread.start()
    }

    private func writeOut(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress! + offset, $0.count - offset) }
            if written < 0 {
                if errno == EINTR { continue }
                return // standard error is gone; nothing better to do with a log line
            }
            offset += written
        }
    }
}
