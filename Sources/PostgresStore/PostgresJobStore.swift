import Dispatch
import Foundation
import JobCore
import Logging
import Postgres
import Synchronization

/// The job store on PostgreSQL (`--store postgres://…`): the same questions and writes as the
/// SQLite store, through libpq.
///
/// Writes go through two writer threads, one for submissions and one for every other change
/// (``PostgresWriterLane``), each on its own connection. Each commits whatever has queued up
/// for it in one transaction (group commit) and reports each change once `COMMIT` returns:
/// a submission is acknowledged only when it is durable (PostgreSQL's defaults, `fsync` and
/// `synchronous_commit` on, are left alone). Questions are answered on a small pool of other
/// connections. Nothing here may run on the event loop: every call blocks on the network.
///
/// Several nodes may share one database. Each registers a lease (``NodeLease``) and claims
/// due jobs from the table (``PostgresWorkQueue``); a starting node recovers nothing, and only
/// the rescue sweeper touches another node's running jobs, once that node's lease expired.
///
/// ```swift
/// let store = try PostgresJobStore(url: "postgres://jobpool@db/jobpool", logger: logger)
/// store.start()
/// store.apply(.submitted([record])) { result in /* durable, or not */ }
/// ```
public final class PostgresJobStore: JobStore {
    typealias Item = GroupCommitQueue.Item

    /// The database, shown redacted in every message.
    public let target: PostgresConnectionString
    /// This process's rows in `job_counts`: a random UUID for each start, and the ID this node
    /// registers first (it registers under a new one if its lease lapses; its counts stay).
    public let nodeID: String
    /// This node's row in `nodes` and its heartbeat.
    let lease: NodeLease
    let logger: Logger
    /// The writer of submissions and of jobs leaving the queue unrun; its connection is the one
    /// the start migrated with.
    let submissions: PostgresWriterLane
    /// The writer of every other change (starts, finishes, retries, cancel requests, deliveries).
    let changes: PostgresWriterLane
    /// Connections for the questions (``StoreReader``'s threads).
    let readers: PostgresConnectionPool
    let writable = Atomic<Bool>(true)
    /// How long the idle writer waits before checking that the database still answers.
    let healthCheckInterval: Duration
    /// This node's ear on the other nodes' commits (LISTEN/NOTIFY, and a ~1 s poll).
    let listener: PostgresListener
    /// Reads the event log in order, for the event stream and for waiters on remote jobs.
    let tailer: PostgresEventTailer
    /// Where the listener tells what it heard; set by ``connect(_:)``.
    let clusterFeed = Mutex<ClusterFeed?>(nil)

    public var isDurable: Bool { true }

    /// The fencing token of each job this process claimed.
    let claims: ClaimTokens
    /// What the queue limits are checked against between counts of the queue.
    let admissionBound = AdmissionBound()
    /// The due work: claimed from the table, by whichever node has a free worker.
    let claimer: PostgresWorkQueue
    public var workQueue: any WorkQueue { claimer }

    /// False while the database cannot be reached or written (readiness).
    public var isWritable: Bool { writable.load(ordering: .relaxed) }

    /// This node's current ID and the nodes with a live lease, as of the last heartbeat.
    public var cluster: ClusterMembership? {
        let membership = lease.membership
        return ClusterMembership(nodeID: membership.nodeID, liveNodes: membership.liveNodes)
    }

    /// Connects and migrates the schema (under an advisory lock). Throws, with a message for
    /// the operator and the password masked, if the database cannot be reached or was written
    /// by a jobpool two or more versions newer. No thread starts here.
    ///
    /// - Parameters:
    ///   - readerCount: connections that answer queries at once; more callers wait.
    ///   - healthCheckInterval: how long the idle writer waits before checking the database answers.
    ///   - lease: how often this node renews its lease in `nodes`, and for how long.
    ///   - agingStep: not used here: the claim order is the table's `due_key`, whose aging step
    ///     is part of the schema, the same for every node (see ``PostgresSchema``).
    ///   - pollInterval: how often the listener looks at the tables even without a notification.
    public init(url: String, logger: Logger, readerCount: Int = 4, agingStep: Duration = .seconds(10), healthCheckInterval: Duration = .seconds(2),
                lease: NodeLeaseSettings = NodeLeaseSettings(), pollInterval: Duration = .seconds(1)) throws(StoreError) {
        if let problem = lease.problem { throw StoreError(problem) }
        let target = PostgresConnectionString(url)
        self.target = target
        self.logger = logger
        self.healthCheckInterval = healthCheckInterval
        let nodeID = UUID().uuidString.lowercased()
        self.nodeID = nodeID
        let nodeLease = NodeLease(nodeID: nodeID, target: target, settings: lease, logger: logger)
        self.lease = nodeLease
        let changes = PostgresWriterLane(name: "changes")
        self.changes = changes
        let claims = ClaimTokens()
        self.claims = claims
        claimer = PostgresWorkQueue(target: target, lease: nodeLease, claims: claims, logger: logger) { [changes] jobs in
            // Claimed, never run (a drain): queued again, for another node or the next start.
            for job in jobs {
                changes.queue.append(.requeued(job.key, attempt: job.snapshot().attempt, interrupted: nil), completion: nil)
            }
        }
        readers = PostgresConnectionPool(target: target, size: readerCount, settings: Self.sessionSettings(nodeID: nodeID))
        listener = PostgresListener(target: target, logger: logger, pollInterval: pollInterval)
        do {
            let connection = try PostgresConnection(connectingTo: target, settings: Self.writerSettings(nodeID: nodeID))
            try Self.migrate(connection, logger: logger)
            tailer = PostgresEventTailer(after: try PostgresEventTailer.end(on: connection))
            try Self.foldCounts(into: nodeID, on: connection)
            submissions = PostgresWriterLane(name: "submissions", connection: connection)
        } catch let error as StoreError {
            throw error
        } catch let error as PostgresError where error.isConnectionLost {
            throw StoreError("cannot open the job store: \(target.scrub("\(error)"))") // names the database already
        } catch {
            throw StoreError("cannot open the job store at \(target.redacted): \(target.scrub("\(error)"))")
        }
    }

    /// Every connection names the node, so that the count triggers write this node's rows.
    static func sessionSettings(nodeID: String) -> [(name: String, value: String)] {
        [(name: "jobpool.node", value: nodeID)]
    }

    /// The writers' sessions: also planned never to read `jobs` whole. Every write names its
    /// rows by key, so every join is a nested loop into an index. But a prepared statement
    /// keeps the generic plan it was given while the table was new, without statistics and
    /// guessed tiny, however large the table grows: then a batch of finishes was hashed
    /// against every unfinished job (a whole scan of `jobs_pkey`) and every finished one
    /// (`jobs_by_finished`), once per batch. Measured in `bench/cluster.sh`: 7 M index entries
    /// read for 30,000 jobs, and the finish statement at 160 µs a job. Pricing out only
    /// sequential scans was not enough; hash and merge joins and bitmap scans are the other
    /// ways to read a table whole. The settings only price them out: where no index serves, a
    /// scan still runs, and its plan's cost is vast, so JIT is off too: past its cost thresholds
    /// every execution compiled the statement first (330 ms for a 7 ms statement, measured).
    static func writerSettings(nodeID: String) -> [(name: String, value: String)] {
        sessionSettings(nodeID: nodeID) + ["enable_seqscan", "enable_bitmapscan", "enable_hashjoin", "enable_mergejoin", "jit"].map {
            (name: $0, value: "off")
        }
    }

    /// Adds the count rows of nodes that are gone (earlier starts, dead nodes) to this node's,
    /// so that rows do not pile up with restarts. Only the sums matter, so moving a count from
    /// one node's row to another's changes no total; rows of nodes still registered are left.
    static func foldCounts(into nodeID: String, on connection: PostgresConnection) throws {
        try connection.execute("""
            WITH moved AS (
                DELETE FROM job_counts WHERE node <> $1 AND node NOT IN (SELECT id::text FROM nodes)
                RETURNING owner, kind, status, count)
            INSERT INTO job_counts AS c (node, owner, kind, status, count)
            SELECT $1, owner, kind, status, sum(count) FROM moved GROUP BY owner, kind, status HAVING sum(count) <> 0
            ON CONFLICT (node, owner, kind, status) DO UPDATE SET count = c.count + excluded.count
            """, [nodeID])
    }

    /// The lanes, submissions first.
    var lanes: [PostgresWriterLane] { [submissions, changes] }

    /// Changes applied and not yet taken by a writer (tests watch it).
    var pendingWrites: Int { lanes.reduce(0) { $0 + $1.queue.pendingCount } }

    /// Starts the writer threads, which write whatever was applied before, and the heartbeat,
    /// which registers this node. No thread starts in `init`.
    public func start() {
        guard submissions.queue.markStarted(), changes.queue.markStarted() else { return }
        lease.onBeat { [weak self] connection in self?.sweep(on: connection) }
        lease.start()
        claimer.start()
        listener.connect(listenerHandlers)
        listener.start()
        for lane in lanes {
            let thread = Thread { [self] in
                writerLoop(lane)
                lane.queue.writerExited()
            }
            thread.name = "jobpool-postgres-\(lane.name)"
            thread.start()
        }
    }

    public func apply(_ change: StoreChange, whenDurable completion: (@Sendable (Result<Void, StoreError>) -> Void)?) {
        (PostgresWriterLane.writesWithSubmissions(change) ? submissions : changes).queue.append(change, completion: completion)
    }

    /// Stops claiming, writes what is queued (giving up after 10 s on a database that does not
    /// answer), releases this node's pending webhook events, then closes every connection and
    /// deletes this node's row.
    public func close() {
        let closing = lanes.map { $0.queue.markClosing() }
        guard closing.allSatisfy(\.first) else { return }
        claimer.stop()
        for (lane, state) in zip(lanes, closing) where !state.wasStarted {
            // Never started: write what was applied meanwhile here, then close.
            writerLoop(lane)
            lane.queue.writerExited()
        }
        // Both lanes together get 10 s for a database that does not answer.
        let deadline = ContinuousClock.now + .seconds(10)
        let written = lanes.map { $0.queue.waitForWriter(timeout: max(.zero, deadline - .now)) }
        if written.allSatisfy({ $0 }) {
            changes.connection.withLock { connection in
                // The deliverer has stopped: this node's pending events go to the other nodes
                // (on a connection made for it if the lane never needed one).
                if let open = try? connected(&connection) { releaseWebhookEvents(on: open) }
            }
        }
        for (lane, done) in zip(lanes, written) where done {
            lane.connection.withLock { connection in
                connection?.close()
                connection = nil
            }
        }
        listener.stop()
        readers.close()
        // Last: the lease says this node may still write about its jobs.
        lease.stop()
    }
}
