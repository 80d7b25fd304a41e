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

    /// Queues `lines` (one or more, each ending in a newline) for writing. When they do not
    /// all fit, the whole lines that do are kept and the rest are dropped and counted.
    func write(_ lines: [UInt8]) {
        let (wakeWriter, startWriter, dropped, report) = state.withLock { state in
            let before = state.pending.count
            var dropped = 0
            if before + lines.count <= capacity {
                state.pending.append(contentsOf: lines)
            } else {
                var lineStart = 0
                for (index, byte) in lines.enumerated() where byte == UInt8(ascii: "\n") {
                    if state.pending.count + (index + 1 - lineStart) <= capacity {
                        state.pending.append(contentsOf: lines[lineStart...index])
                    } else {
                        dropped += 1
                    }
                    lineStart = index + 1
                }
                state.dropped += dropped
            }
            defer { state.writerStarted = true }
            // Woken only when the batch grows past a threshold, not per line (see `interval`).
            return (before < Self.wakeThreshold && state.pending.count >= Self.wakeThreshold, !state.writerStarted,
                    dropped, state.onDrop)
        }
        if startWriter { startWriterThread() }
        if wakeWriter { wake.signal() }
        if dropped > 0 { report?(dropped) }
    }

    /// Writes everything queued so far, on the calling thread; returns once it is written.
    func flush() {
        flush(deadline: nil)
    }

    /// The last flush before the process exits: it gives up after `timeout`, so that a stalled
    /// reader of standard error cannot keep a stopping server from exiting.
    func flushBeforeExit(timeout: Duration = .seconds(2)) {
        let flags = fcntl(descriptor, F_GETFL)
        if flags >= 0 { _ = fcntl(descriptor, F_SETFL, flags | O_NONBLOCK) }
        flush(deadline: .now + timeout)
    }

    private func flush(deadline: ContinuousClock.Instant?) {
        writing.withLock { _ in writeOut(state.withLock { state in
            defer { state.pending.removeAll(keepingCapacity: true) }
            return state.pending
        }, deadline: deadline) }
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

    private func writeOut(_ bytes: [UInt8], deadline: ContinuousClock.Instant?) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress! + offset, $0.count - offset) }
            if written < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN, let deadline, ContinuousClock.now < deadline {
                    var ready = pollfd(fd: descriptor, events: Int16(POLLOUT), revents: 0)
                    _ = poll(&ready, 1, Int32(clamping: (deadline - .now).clampedMilliseconds))
                    continue
                }
                return // standard error is gone or stalled; nothing better to do with a log line
            }
            offset += written
        }
    }
}
