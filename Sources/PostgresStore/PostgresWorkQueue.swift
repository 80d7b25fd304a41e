import Dispatch
import Foundation
import JobCore
import Logging
import Postgres
import Synchronization

/// The due work of a database several nodes share: jobs are claimed from the `jobs` table
/// with `FOR UPDATE SKIP LOCKED`, so that each is claimed by one node.
///
/// The pool calls ``claimNext(now:)`` under its own lock, so that call only pops a local
/// buffer. A claimer thread fills it: it claims at most as many jobs as the pool has free
/// workers (nothing is claimed ahead, which a crash would strand until the rescue), turns each
/// row into a ``Job`` through the host's factory, and wakes the pool. It claims when a job is
/// offered here, when a worker becomes free, and otherwise every second or so (jittered, so
/// that nodes do not poll in step), for work submitted on other nodes.
///
/// The claim is the job's "started" write: it sets `running`, this node and the start time in
/// one statement. Its order is the stored sort key `due_key` (when the job fell due, less
/// `priority` aging steps, see ``PostgresSchema``); under `SKIP LOCKED` it is approximate, as
/// rows another node is claiming at that moment are passed over.
final class PostgresWorkQueue: WorkQueue {
    private struct State {
        /// Claimed for this node, waiting for a worker to pop them.
        var buffer: [Job] = []
        var host: WorkQueueHost?
        /// The claimer has been asked to look again before its next poll.
        var wakeRequested = false
        /// The next pass looks at the rest of the cluster, whenever the last look was.
        var lookRequested = false
        var stopping = false
        /// The longest-waiting queued job of the whole cluster, as of the last poll.
        var oldestQueuedAt: Date?
        /// Claimed rows this node could not read, not handed back yet (see
        /// ``handBack(_:nodeID:on:)``).
        var unreadable: Set<JobID> = []
    }

    private let state = Mutex(State())
    private let wake = DispatchSemaphore(value: 0)
    private let exited = DispatchGroup()
    let target: PostgresConnectionString
    private let lease: NodeLease
    /// Where each claim's fencing token is kept, for the writes about its outcome.
    private let claims: ClaimTokens
    let logger: Logger
    private let pollInterval: Duration
    /// Hands back jobs claimed but never run (a drain), as queued rows.
    private let requeue: @Sendable ([Job]) -> Void

    init(target: PostgresConnectionString, lease: NodeLease, claims: ClaimTokens = ClaimTokens(), logger: Logger,
         pollInterval: Duration = .seconds(1), requeue: @escaping @Sendable ([Job]) -> Void) {
        self.target = target
        self.lease = lease
        self.claims = claims
        self.logger = logger
        self.pollInterval = pollInterval
        self.requeue = requeue
    }

    var isShared: Bool { true }

    /// The queue limits of the pool attached, which the store checks for each submission
    /// (nil until a pool is attached: then nothing is refused).
    var limits: (maxQueued: Int, maxQueuedPerOwner: Int?)? {
        state.withLock { $0.host.map { ($0.maxQueued, $0.maxQueuedPerOwner) } }
    }

    /// Tells the host about jobs the rescue took back from dead nodes.
    func reportRescued(_ records: [JobRecord]) {
        state.withLock { $0.host }?.rescued(records)
        wakeClaimer() // re-queued work to claim
    }

    func attach(_ host: WorkQueueHost) {
        state.withLock { $0.host = host }
    }

    /// The job is in the table already (a submission is accepted only once committed): claim.
    func offer(_ job: Job) { wakeClaimer() }

    func workerFreed() { wakeClaimer() }

    func lookAroundSoon() {
        state.withLock { $0.lookRequested = true }
        wakeClaimer()
    }

    func claimNext(now: Date) -> Job? {
        state.withLock { $0.buffer.isEmpty ? nil : $0.buffer.removeFirst() }
    }

    var hasClaimableWork: Bool { state.withLock { !$0.buffer.isEmpty } }

    /// The cluster's longest-waiting queued job (every owner's only: per owner it is not kept).
    func oldestQueuedAt(owner: String??) -> Date? {
        guard case .none = owner else { return nil }
        return state.withLock { $0.oldestQueuedAt }
    }

    /// Stops claiming, and hands the claimed jobs that never ran back to the queue, for this
    /// node's next start or another node.
    func takeUnclaimed() -> [Job] {
        let jobs = state.withLock { state in
            state.stopping = true
            defer { state.buffer.removeAll() }
            return state.buffer
        }
        wake.signal()
        _ = exited.wait(timeout: .now() + .seconds(5))
        // A claim in flight when the drain began may have filled the buffer meanwhile.
        let late = state.withLock { state in
            defer { state.buffer.removeAll() }
            return state.buffer
        }
        if !(jobs + late).isEmpty { requeue(jobs + late) }
        return jobs + late
    }

    /// Starts the claimer thread.
    func start() {
        exited.enter()
        let thread = Thread { [self] in
            claimerLoop()
            exited.leave()
        }
        thread.name = "jobpool-postgres-claimer"
        thread.start()
    }

    /// Stops the claimer, if a drain has not.
    func stop() {
        state.withLock { $0.stopping = true }
        wake.signal()
        _ = exited.wait(timeout: .now() + .seconds(5))
    }

    private func wakeClaimer() {
        let signal = state.withLock { state -> Bool in
            guard !state.wakeRequested else { return false }
            state.wakeRequested = true
            return true
        }
        if signal { wake.signal() }
    }

    private func claimerLoop() {
        var connection: PostgresConnection?
        defer { connection?.close() }
        var lastLookAround = ContinuousClock.now - pollInterval
        while !state.withLock({ $0.stopping }) {
            state.withLock { $0.wakeRequested = false }
            do {
                if connection == nil || connection?.isBroken == true {
                    connection?.close()
                    connection = try Self.claimerConnection(to: target)
                }
                // A wake-up (a submission, a freed worker) claims; the look at the rest of
                // the cluster (hand-offs, the oldest queued job) costs a query over every job
                // this node waits for, so it runs once per poll interval, not once per wake-up.
                let asked = state.withLock { state in
                    defer { state.lookRequested = false }
                    return state.lookRequested
                }
                let lookAround = asked || ContinuousClock.now - lastLookAround >= pollInterval * 0.8
                if lookAround { lastLookAround = .now }
                if let connection { try pass(on: connection, lookingAround: lookAround) }
            } catch {
                logger.error("Claiming jobs failed", metadata: ["error": "\(target.scrub("\(error)"))"])
            }
            let jitter = Double.random(in: 0.8...1.2)
            _ = wake.wait(timeout: .now() + (pollInterval * jitter).dispatchInterval)
        }
    }

    /// The claimer's own connection, planned for walking `jobs_due` in order.
    ///
    /// The plan must not depend on the table's statistics. Before the first ANALYZE (a new
    /// database, a table that grew fast) the planner guesses a handful of due rows and reads
    /// them with a bitmap scan and a sort: every claim then reads the whole partial index,
    /// every queued job and every entry that claims left dead since the last vacuum. Measured
    /// in `bench/cluster.sh`: 15,000 entries read per claim, and a quarter of the database's
    /// time. In index order a claim reads its `LIMIT` rows and the dead entries in front of
    /// them, which the scan marks so that the next claim skips them. PostgreSQL has no
    /// per-query hints; this session runs only the claimer's queries, each of them an index
    /// lookup either way.
    static func claimerConnection(to target: PostgresConnectionString) throws -> PostgresConnection {
        try PostgresConnection(connectingTo: target, applicationName: "jobpool-claimer", settings: sessionSettings)
    }

    /// Hash and merge joins are priced out too. The claim is a prepared statement, and its
    /// `LIMIT` is a parameter, which a generic plan guesses at a tenth of the table: on a
    /// table with statistics that plan joined the claimed rows to `jobs` by a merge join over
    /// the whole of `jobs_pkey` (measured with 20,000 queued jobs: 12,687 index entries read,
    /// 5.5 ms, to claim one job). PostgreSQL then either runs that plan or plans every claim
    /// anew (0.5 ms each). Priced out, the claimed rows are looked up by key, whatever the
    /// guess. JIT off as well: a plan that cannot avoid a scan priced out costs enough to be
    /// compiled by JIT at every execution (``PostgresJobStore/writerSettings(nodeID:)``).
    static let sessionSettings: [(name: String, value: String)] =
        ["enable_bitmapscan", "enable_seqscan", "enable_hashjoin", "enable_mergejoin", "jit"].map { (name: $0, value: "off") }

    /// One look at the table: claims for the free workers and, when `lookingAround`, tells the
    /// host which of its waiting jobs other nodes took and notes the oldest queued job.
    private func pass(on connection: PostgresConnection, lookingAround: Bool) throws {
        guard let host = state.withLock({ $0.host }) else { return }
        // A node whose lease may have lapsed starts nothing: its jobs may be another's already.
        if lease.isHeld {
            if state.withLock({ !$0.unreadable.isEmpty }) { try handBack([], nodeID: lease.membership.nodeID, on: connection) }
            let free = host.freeWorkers() - state.withLock { $0.buffer.count }
            if free > 0 { try claim(free, host: host, on: connection) }
        }
        guard lookingAround else { return }
        try handOffClaimedElsewhere(host: host, on: connection)
        let oldest = try connection.query("""
            SELECT min(created_at) AS oldest FROM jobs WHERE status = 'queued'
            """).first?.optionalInt64("oldest")
        state.withLock { $0.oldestQueuedAt = oldest.map(StoredTime.date) }
    }

    /// Claims up to `limit` due jobs for this node, and hands them to the workers as soon as
    /// the claim's rows are back, while the claim commits.
    ///
    /// The commit waits for the WAL flush, and the next claim waits for the commit: starting the
    /// jobs only after it left the workers idle for that wait at every claim (measured on one
    /// node, 64 workers: the claimer spent four fifths of its time in claims, most of it in
    /// the flush). A job's outcome is still written only after its claim committed (its write
    /// waits on ``ClaimTokens``), or the write would find the job queued and be refused.
    ///
    /// A claim whose commit fails has started jobs that may not be this node's: the database
    /// went away in the middle of the commit, and either kept the claim or not. Their writes
    /// are fenced like any other: kept, they are this node's attempts and their outcomes are
    /// written. Not kept, the jobs are queued again: claimed by another node, the copies here
    /// are stale and their outcomes refused, and the jobs run again, as after a crash; claimed
    /// again by this node, it is the same attempt, and a copy still running here writes its
    /// outcome (the executor starts no second copy; one that finished meanwhile runs again,
    /// and only the first outcome is kept). Before, such a claim, kept, left its jobs running on
    /// this node, never run, until the node restarted.
    ///
    /// A claimed row this node cannot read is handed back once the claim has committed
    /// (``handBack(_:nodeID:on:)``); the rows it can read run.
    private func claim(_ limit: Int, host: WorkQueueHost, on connection: PostgresConnection) throws {
        let nodeID = lease.membership.nodeID
        let commit = DispatchGroup()
        commit.enter()
        var claimed: [(id: JobID, token: ClaimTokens.Token)] = []
        var unreadable: [UnreadableRow] = []
        let outcome = Result { () throws(PostgresError) in
            try connection.queryOverlappingCommit(Self.claimSQL, [nodeID, limit]) { rows in
                var records: [JobRecord] = []
                for row in rows {
                    do {
                        records.append(try PostgresRowDecoding.job(row))
                    } catch {
                        // The key is a `uuid`: it reads whatever else does not.
                        if let id = try? PostgresRowDecoding.jobID(row, "id") { unreadable.append(UnreadableRow(id: id, error: error)) }
                    }
                }
                claimed = records.map { ($0.id, ClaimTokens.Token(attempt: $0.attempt, node: nodeID)) }
                claims.record(claimed, committing: commit)
                let jobs = records.compactMap(host.makeJob)
                guard !jobs.isEmpty else { return }
                state.withLock { $0.buffer += jobs }
                host.wakeWorkers()
            }
        }
        claims.settle(claimed.map(\.id))
        commit.leave()
        if case .failure(let error) = outcome {
            // The claim may have been kept: the unreadable rows are handed back at the next pass.
            _ = pendingHandBacks(adding: unreadable.map(\.id))
            if !claimed.isEmpty {
                logger.warning("A claim's commit failed after its jobs started; their outcomes are written only if the claim was kept",
                               metadata: ["count": "\(claimed.count)", "error": "\(target.scrub("\(error)"))"])
            }
            throw error
        }
        if !unreadable.isEmpty { try handBack(unreadable, nodeID: nodeID, on: connection) }
        logger.trace("Claimed jobs", metadata: ["count": "\(claimed.count)", "node": "\(nodeID)"])
    }

    /// The claimed rows waiting to be handed back, with `ids` added.
    func pendingHandBacks(adding ids: [JobID]) -> Set<JobID> {
        state.withLock { state in
            state.unreadable.formUnion(ids)
            return state.unreadable
        }
    }

    func handedBack(_ ids: Set<JobID>) {
        state.withLock { $0.unreadable.subtract(ids) }
    }

    /// Claims due jobs: queued ones, and scheduled ones whose time has come by the database's
    /// clock, in `due_key` order through the partial index `jobs_due`. The attempt is the one
    /// stored (a retry or a re-queue set it already).
    ///
    /// The walk stops at ``claimHorizonMicros`` past the database's now. Without a bound, a
    /// claim that finds fewer due jobs than free workers (an idle node's every pass) read on
    /// through every job scheduled for later, however far ahead: a million jobs submitted with
    /// tomorrow's `run_at` meant a million rows read per pass per node.
    ///
    /// The claim logs its own events (`job.started`, after `job.queued` for a scheduled job),
    /// rather than through the log trigger (``PostgresSchema/version8``), and tells the count
    /// trigger it has nothing to count (``PostgresSchema/version9``).
    static let claimSQL = """
        WITH claimable AS (
            SELECT id, status FROM jobs
            WHERE status IN ('queued', 'scheduled')
              AND due_key <= (extract(epoch FROM now()) * 1000000)::bigint + \(claimHorizonMicros)
              AND (status = 'queued' OR next_attempt_at <= (extract(epoch FROM now()) * 1000000)::bigint)
            ORDER BY due_key
            LIMIT $2::int
            FOR UPDATE SKIP LOCKED),
        claimed AS (
            UPDATE jobs j SET status = 'running', node = $1::uuid,
                              started_at = (extract(epoch FROM now()) * 1000000)::bigint, next_attempt_at = NULL
            FROM claimable WHERE j.id = claimable.id
            RETURNING j.*, claimable.status AS claimed_from),
        logged AS (
            INSERT INTO job_events (at, job_id, event, status, kind, owner, attempt, max_attempts)
            SELECT c.started_at, c.id, e.event, e.status, c.kind, c.owner, c.attempt, c.max_attempts
            FROM claimed c CROSS JOIN LATERAL jobpool_change_events(c.claimed_from, 'running', true) e
            WHERE \(PostgresSchema.changesLoggedHere) AND \(PostgresSchema.changesCountedHere)
            ORDER BY c.id, e.step)
        SELECT * FROM claimed
        """

    /// How far past the database's now a claim looks, in `due_key` terms:
    /// - A scheduled job is due once `next_attempt_at` has passed, so its `due_key` is at most
    ///   now plus the lowest priority's aging (priority -10: 100 s). Exact: no due job is past it.
    /// - A queued job's `due_key` is its `created_at`, the submitting node's clock, less its
    ///   aging. A node whose clock runs ahead of the database's by more than
    ///   ``clockAllowance`` has its submissions wait until the database's clock catches up
    ///   to within it; they are not lost. Servers kept by NTP differ by milliseconds.
    static let claimHorizonMicros: Int64 =
        Int64(-JobOptions.priorities.lowerBound) * PostgresSchema.agingStepMicros + clockAllowance.clampedMicroseconds

    /// How far ahead of the database's clock a node's clock may run before its queued jobs wait.
    static let clockAllowance: Duration = .seconds(300)

    /// The host's waiting jobs that another node claimed or finished: the store answers for
    /// them from now on.
    private func handOffClaimedElsewhere(host: WorkQueueHost, on connection: PostgresConnection) throws {
        let waiting = host.waitingJobs().prefix(5000)
        guard !waiting.isEmpty else { return }
        // A job this node claimed (running, with this node's ID) is about to run here.
        let rows = try connection.query("""
            SELECT id FROM jobs WHERE id = ANY($1::uuid[]) AND status NOT IN ('queued', 'scheduled')
              AND NOT (status = 'running' AND node = $2::uuid)
            """, [PostgresArray(waiting.map(\.id.description)), lease.membership.nodeID])
        let gone = Set(try rows.map { try PostgresRowDecoding.jobID($0, "id") })
        let handed = waiting.filter { gone.contains($0.id) }
        if !handed.isEmpty { host.claimedElsewhere(Array(handed)) }
    }
}
