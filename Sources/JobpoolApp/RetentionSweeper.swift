import Dispatch
import Foundation
import JobCore
import Logging
import Synchronization

/// Removes finished jobs older than the retention period, in the background, in small batches
/// so that neither the store nor the job index is held for long. Jobs whose webhook is still
/// pending are kept until it is delivered or failed.
final class RetentionSweeper: BlockingService {
    private let executor: JobExecutor
    private let retention: Duration
    private let interval: Duration
    private let logger: Logger
    private let stopped = Mutex(false)
    private let wake = DispatchSemaphore(value: 0)
    private let exited = DispatchSemaphore(value: 0)
    static let batchSize = 500

    init(executor: JobExecutor, retention: Duration, interval: Duration, logger: Logger) {
        self.executor = executor
        self.retention = retention
        self.interval = interval
        self.logger = logger
    }

    var name: String { "retention" }

    func start() {
        Thread { [self] in
            while !stopped.withLock({ $0 }) {
                sweep()
                _ = wake.wait(timeout: .now() + interval.dispatchInterval)
            }
            exited.signal()
        }.start()
    }

    func stop() {
        let first = stopped.withLock { stopped -> Bool in
            defer { stopped = true }
            return !stopped
        }
        guard first else { return }
        wake.signal()
        _ = exited.wait(timeout: .now() + .seconds(5))
    }

    private func sweep() {
        let cutoff = Date().addingTimeInterval(-retention.seconds)
        var removed = 0
        while !stopped.withLock({ $0 }) {
            do throws(StoreError) {
                let count = try executor.purgeFinished(before: cutoff, limit: Self.batchSize)
                removed += count
                if count > 0 {
                    executor.metrics.counter("jobpool_retention_batches_total", []).increment()
                    executor.metrics.counter("jobpool_retention_deleted_total", []).increment(by: count)
                }
                if count < Self.batchSize { break }
            } catch {
                logger.warning("Retention could not delete finished jobs; it tries again next sweep", metadata: ["error": "\(error.message)"])
                break
            }
        }
        if removed > 0 { logger.info("Retention removed finished jobs", metadata: ["count": "\(removed)"]) }
        purgeEvents(before: cutoff)
    }

    /// The event log's old entries (a store shared by several nodes keeps one), in batches.
    private func purgeEvents(before cutoff: Date) {
        while !stopped.withLock({ $0 }) {
            do throws(StoreError) {
                if try executor.purgeEvents(before: cutoff, limit: Self.batchSize) < Self.batchSize { break }
            } catch {
                logger.warning("Retention could not delete old events; it tries again next sweep", metadata: ["error": "\(error.message)"])
                break
            }
        }
    }
}
