import Dispatch
import Foundation
import JobCore
import Logging
import Postgres
import Synchronization

/// This node's row in `nodes`, and the heartbeat thread that keeps its lease alive.
///
/// Every lease time is the database's `now()`: nodes' clocks may disagree, the database's is
/// the one they share. A renewal only extends a lease that has not expired
/// (`WHERE lease_until > now()`). A node that finds its lease lapsed (it was paused, or cut off
/// from the database, for longer than the lease) never revives it, since the other nodes may
/// already have taken its jobs back: it registers again under a new ID.
///
/// The heartbeat has a connection of its own, so that a long group commit on the writer's
/// connection cannot delay it.
///
/// ```swift
/// let lease = NodeLease(nodeID: id, target: target, settings: NodeLeaseSettings(), logger: logger)
/// lease.start()              // registers, then renews every heartbeat
/// lease.membership.nodeID    // this node's current ID
/// lease.stop()               // deletes the row: the other nodes see this one gone at once
/// ```
final class NodeLease: Sendable {
    private struct State {
        var nodeID: String
        /// True once the row is in the table, until the lease is found lapsed.
        var registered = false
        /// Live leases seen at the last heartbeat (this node's included once registered).
        var liveNodes = 1
        /// Until when this node may act on its lease, by the local monotonic clock: the
        /// renewal's send time plus the lease, so it ends no later than the database's.
        var heldUntil: ContinuousClock.Instant?
        var stopping = false
    }

    let settings: NodeLeaseSettings
    private let target: PostgresConnectionString
    private let logger: Logger
    private let state: Mutex<State>
    /// Signalled by ``stop()`` to cut the heartbeat's sleep short.
    private let wake = DispatchSemaphore(value: 0)
    private let exited = DispatchGroup()
    /// Runs on the heartbeat's connection after each beat that holds the lease (the rescue).
    private let afterBeat = Mutex<(@Sendable (PostgresConnection) -> Void)?>(nil)
    private let clockCheck: DatabaseClockCheck

    /// - Parameters:
    ///   - nodeID: the ID to register first (a lowercase UUID).
    ///   - wallClock: this node's clock, compared with the database's at every beat.
    init(nodeID: String, target: PostgresConnectionString, settings: NodeLeaseSettings, logger: Logger,
         wallClock: @escaping @Sendable () -> Date = Date.init) {
        self.target = target
        self.settings = settings
        self.logger = logger
        clockCheck = DatabaseClockCheck(logger: logger, wallClock: wallClock)
        state = Mutex(State(nodeID: nodeID))
    }

    /// This node's ID and the live node count.
    var membership: (nodeID: String, liveNodes: Int) {
        state.withLock { ($0.nodeID, $0.liveNodes) }
    }

    /// True while this node's lease surely holds: registered, and renewed less than a lease ago.
    var isHeld: Bool {
        state.withLock { state in
            guard state.registered, let until = state.heldUntil else { return false }
            return ContinuousClock.now < until
        }
    }

    /// Sets what runs after each heartbeat that holds the lease (before ``start()``).
    func onBeat(_ body: @escaping @Sendable (PostgresConnection) -> Void) {
        afterBeat.withLock { $0 = body }
    }

    /// Registers this node (on the caller's thread, so that the node holds its lease once
    /// this returns, unless the database is away: then the heartbeat keeps trying), then starts
    /// the heartbeat thread. Call once.
    func start() {
        var connection: PostgresConnection?
        beat(&connection)
        exited.enter()
        let thread = Thread { [self, connection] in
            heartbeatLoop(connection)
            exited.leave()
        }
        thread.name = "jobpool-postgres-heartbeat"
        thread.start()
    }

    /// Stops the heartbeat and deletes this node's row, waiting up to `timeout` for both.
    func stop(timeout: Duration = .seconds(5)) {
        let first = state.withLock { state -> Bool in
            defer { state.stopping = true }
            return !state.stopping
        }
        guard first else { return }
        wake.signal()
        _ = exited.wait(timeout: .now() + timeout.dispatchInterval)
    }

    private func heartbeatLoop(_ first: PostgresConnection?) {
        var connection = first
        defer { connection?.close() }
        while !state.withLock({ $0.stopping }) {
            _ = wake.wait(timeout: .now() + settings.heartbeat.dispatchInterval)
            guard !state.withLock({ $0.stopping }) else { break }
            beat(&connection)
        }
        leave(connection)
    }

    /// Registers, or renews the lease; on a lapsed lease, registers again under a new ID.
    private func beat(_ connection: inout PostgresConnection?) {
        let sent = ContinuousClock.now
        do {
            if connection == nil || connection?.isBroken == true {
                connection?.close()
                connection = try PostgresConnection(connectingTo: target, applicationName: "jobpool-heartbeat")
            }
            guard let connection else { return }
            let (nodeID, registered) = state.withLock { ($0.nodeID, $0.registered) }
            if !registered {
                try register(nodeID, on: connection)
            } else if try !renew(nodeID, on: connection) {
                let fresh = UUID().uuidString.lowercased()
                logger.warning("This node's lease lapsed before it was renewed (the process was paused, or cut off from the database, for longer than the lease); the other nodes may have taken its jobs. Registering again under a new ID.",
                               metadata: ["node": "\(nodeID)", "new_node": "\(fresh)", "lease_seconds": "\(settings.lease.components.seconds)"])
                state.withLock { state in
                    state.nodeID = fresh
                    state.registered = false
                    state.heldUntil = nil
                }
                try register(fresh, on: connection)
            }
            state.withLock { $0.heldUntil = sent + settings.lease }
            afterBeat.withLock { $0 }?(connection)
        } catch {
            logger.error("Node heartbeat failed", metadata: ["error": "\(target.scrub("\(error)"))"])
        }
    }

    private func register(_ nodeID: String, on connection: PostgresConnection) throws {
        let rows = try connection.query("""
            WITH registered AS (
                INSERT INTO nodes (id, lease_until, host, pid) VALUES ($1::uuid, now() + $2::bigint * interval '1 microsecond', $3, $4::int)
                RETURNING id)
            SELECT (SELECT count(*) FROM nodes WHERE lease_until > now()) + (SELECT count(*) FROM registered) AS live,
                   \(DatabaseClockCheck.databaseClockColumn)
            """, [nodeID, settings.lease.clampedMicroseconds, ProcessInfo.processInfo.hostName, Int(ProcessInfo.processInfo.processIdentifier)])
        let live = try rows.first?.int("live") ?? 1
        if let databaseMicros = try rows.first?.int64("database_micros") { clockCheck.check(databaseMicros: databaseMicros, nodeID: nodeID) }
        state.withLock { state in
            state.registered = true
            state.liveNodes = live
        }
        logger.info("Registered this node", metadata: ["node": "\(nodeID)", "nodes": "\(live)"])
    }

    /// Extends a live lease; false if it had expired already (then nothing changed).
    private func renew(_ nodeID: String, on connection: PostgresConnection) throws -> Bool {
        // The UPDATE's effect is not seen by the count (one snapshot), but a lease it renews
        // was live already, so the count is right either way.
        let rows = try connection.query("""
            WITH renewed AS (
                UPDATE nodes SET lease_until = now() + $2::bigint * interval '1 microsecond', renewed_at = now()
                WHERE id = $1::uuid AND lease_until > now()
                RETURNING id)
            SELECT (SELECT count(*) FROM renewed) AS renewed, (SELECT count(*) FROM nodes WHERE lease_until > now()) AS live,
                   \(DatabaseClockCheck.databaseClockColumn)
            """, [nodeID, settings.lease.clampedMicroseconds])
        guard let row = rows.first, try row.int("renewed") == 1 else { return false }
        clockCheck.check(databaseMicros: try row.int64("database_micros"), nodeID: nodeID)
        let live = try row.int("live")
        state.withLock { $0.liveNodes = live }
        return true
    }

    /// Deletes this node's row on a clean stop, so that the others count it gone at once.
    private func leave(_ connection: PostgresConnection?) {
        let (nodeID, registered) = state.withLock { ($0.nodeID, $0.registered) }
        guard registered, let connection, !connection.isBroken else { return }
        do {
            try connection.execute("DELETE FROM nodes WHERE id = $1::uuid", [nodeID])
            state.withLock { $0.registered = false }
        } catch {
            logger.warning("Could not delete this node's row at stop; its lease will expire", metadata: ["error": "\(target.scrub("\(error)"))"])
        }
    }
}
