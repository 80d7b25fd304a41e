import DequeModule
import Foundation
import Synchronization

/// A few threads that run the store's blocking reads, so that no read ever runs on the event
/// loop: the loop hands a read here and answers its request when the read calls back.
///
/// SQLite readers (WAL) never wait for the writer, so a handful of threads keep reads flowing
/// while a group commit syncs. The work waiting is bounded by the connections the front end
/// admits, since each read belongs to one request.
public final class StoreReader: Sendable {
    private struct State {
        var work = Deque<@Sendable () -> Void>()
        var stopping = false
    }

    private let state = Mutex(State())
    private let available = DispatchSemaphore(value: 0)
    private let exited = DispatchGroup()
    public let threadCount: Int

    public init(threads: Int = 2) {
        threadCount = max(1, threads)
    }

    /// Starts the threads. Nothing runs before.
    public func start() {
        for index in 0..<threadCount {
            exited.enter()
            let thread = Thread { [self] in
                while let work = next() { work() }
                exited.leave()
            }
            thread.name = "jobpool-store-reader-\(index)"
            thread.start()
        }
    }

    /// Runs `read` on a reader thread.
    public func run(_ read: @escaping @Sendable () -> Void) {
        state.withLock { $0.work.append(read) }
        available.signal()
    }

    /// Finishes the reads already asked for, then stops the threads.
    public func stop() {
        state.withLock { $0.stopping = true }
        for _ in 0..<threadCount { available.signal() }
        _ = exited.wait(timeout: .now() + .seconds(10))
    }

    private func next() -> (@Sendable () -> Void)? {
        while true {
            available.wait()
            let (work, stopping) = state.withLock { state in (state.work.popFirst(), state.stopping) }
            if let work { return work }
            if stopping { return nil }
        }
    }
}
