import Foundation
import JobCore
import Logging

/// Removes finished jobs older than the retention period, in the background, in small batches
/// so that neither the store nor the job index is held for long. Jobs whose webhook is still
/// pending are kept until it is delivered or failed.
final class RetentionSweeper: BlockingService {
    private let executor: JobExecutor
    private let retention: Duration
    private let interval: Duration
    private let logger: Logger
    private let thread: PeriodicThread
    static let batchSize = 500

    init(executor: JobExecutor, retention: Duration, interval: Duration, logger: Logger) {
        self.executor = executor
        self.retention = retention
        self.interval = interval
        self.logger = logger
        thread = PeriodicThread(interval: interval)
    }

    var name: String { "retention" }

    func start() {
        thread.start { [self] in sweep() }
    }

    func stop() {
        thread.stop()
    }

    private func sweep() {
        let cutoff = Date().addingTimeInterval(-retention.seconds)
        var removed = 0
        while !thread.isStopped {
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
        while !thread.isStopped {
            do throws(StoreError) {
                if try executor.purgeEvents(before: cutoff, limit: Self.batchSize) < Self.batchSize { break }
            } catch {
                logger.warning("Retention could not delete old events; it tries again next sweep", metadata: ["error": "\(error.message)"])
                break
            }
        }
    }
}
