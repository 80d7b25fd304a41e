import JobCore
import Postgres
import Synchronization

/// One of the store's two writers: a group-commit queue, the thread that drains it, and that
/// thread's own connection.
///
/// Submissions and the other changes (starts, finishes, retries, cancels, deliveries) are
/// written by two lanes, so that a batch of finishes and a batch of submissions commit at the
/// same time on two connections rather than one after the other on one: on a busy node the
/// single writer was busy all the time, and submits waited for finishes (measured in
/// `bench/cluster.sh`: 7.8k → 9.8k jobs/s end to end on one node).
///
/// Nothing is reordered that matters. No change can name a job before its submission
/// committed: a job is accepted, claimed or cancelled only once it is in the table; and within
/// a lane, changes keep the order they were applied in. One ordering crosses jobs: the queue
/// limits, checked in the submissions' lane, count queued rows, so a job that leaves the queue
/// without running (a cancel of a waiting job) is written in that lane too. A client told that
/// its cancel freed a place is then never refused that place by the next submission.
final class PostgresWriterLane: Sendable {
    /// For the thread's name and the logs.
    let name: String
    let queue = GroupCommitQueue()
    /// Used by the lane's thread, and before it starts by the start's own writes. Replaced when
    /// it breaks; nil until (re)connected.
    let connection: Mutex<PostgresConnection?>

    init(name: String, connection: PostgresConnection? = nil) {
        self.name = name
        self.connection = Mutex(connection)
    }

    /// Whether the submissions' lane writes `change`: a submission, or a job that leaves the
    /// queue without having run (the queue limits count both).
    static func writesWithSubmissions(_ change: StoreChange) -> Bool {
        switch change {
        case .submitted: return true
        case .finished(_, _, nil, _, _, _, _, _, _, _): return true
        default: return false
        }
    }
}
