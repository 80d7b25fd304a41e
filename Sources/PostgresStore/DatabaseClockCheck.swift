import Foundation
import JobCore
import Logging
import Synchronization

/// Compares this node's wall clock with the database's at every heartbeat, and says so in the
/// log while they disagree by more than ``tolerance``.
///
/// Leases run on the database's clock alone, but a few times come from the node's: a queued
/// job's `created_at` (its place in the claim order, and the claim horizon of
/// ``PostgresWorkQueue/clockAllowance``), a retry's or `run_at`'s due time. A node whose clock
/// runs ahead puts its jobs behind everyone else's, and past the allowance they wait for the
/// database's clock to catch up; one that runs behind puts its jobs ahead and its retries early.
/// NTP keeps servers within milliseconds; this catches a node that lost it.
final class DatabaseClockCheck: Sendable {
    /// One aging step: from here on, a node's jobs sort a priority level away from where they
    /// belong.
    static let tolerance: Duration = .seconds(10)
    /// How often a disagreement that lasts is logged again.
    static let repeatInterval: Duration = .seconds(600)

    private let logger: Logger
    private let wallClock: @Sendable () -> Date
    /// When the disagreement was last logged; nil while the clocks agree.
    private let lastWarning = Mutex<ContinuousClock.Instant?>(nil)

    init(logger: Logger, wallClock: @escaping @Sendable () -> Date = Date.init) {
        self.logger = logger
        self.wallClock = wallClock
    }

    /// The SQL column a heartbeat reads for ``check(databaseMicros:nodeID:)``.
    static let databaseClockColumn = "(extract(epoch FROM clock_timestamp()) * 1000000)::bigint AS database_micros"

    /// Checks this node's clock against `databaseMicros`, the database's clock as a heartbeat
    /// just read it (a round trip's error at most: milliseconds).
    func check(databaseMicros: Int64, nodeID: String) {
        let offset = wallClock().timeIntervalSince1970 - Double(databaseMicros) / 1_000_000
        let shouldLog = lastWarning.withLock { last -> Bool in
            // Once warned, the clocks count as agreeing again only within half the tolerance:
            // an offset that hovers about the tolerance is not logged at every crossing.
            if abs(offset) <= Self.tolerance.seconds / (last == nil ? 1 : 2) {
                defer { last = nil }
                return last != nil
            }
            guard last.map({ ContinuousClock.now - $0 >= Self.repeatInterval }) ?? true else { return false }
            last = .now
            return true
        }
        guard shouldLog else { return }
        let seconds = String(format: "%.1f", abs(offset))
        let metadata: Logger.Metadata = ["node": "\(nodeID)", "clock_offset_seconds": "\(String(format: "%.1f", offset))"]
        if abs(offset) <= Self.tolerance.seconds {
            logger.info("This node's clock agrees with the database's again", metadata: metadata)
        } else if offset > 0 {
            let allowance = PostgresWorkQueue.clockAllowance.components.seconds
            logger.warning("This node's clock is \(seconds) s ahead of the database's: jobs submitted here queue behind other nodes' as if submitted \(seconds) s later (a priority level per 10 s), and from \(allowance) s ahead (more at higher priorities) they wait for the database's clock before any node claims them; retries and delay_seconds from here come late by as much, and a run_at less than that far ahead runs at once. Keep the clocks in sync (NTP).",
                           metadata: metadata)
        } else {
            logger.warning("This node's clock is \(seconds) s behind the database's: jobs submitted here queue ahead of other nodes' as if submitted \(seconds) s earlier (a priority level per 10 s), and retries and delay_seconds from here come early by as much. Keep the clocks in sync (NTP).",
                           metadata: metadata)
        }
    }
}
