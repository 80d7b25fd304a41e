import Foundation
import InMemoryLogging
import JobCore
import Logging
import Postgres
import PostgresTestSupport
import StoreTestSupport
import Testing
@testable import PostgresStore

/// Node rows and their leases: registered at start, renewed by the heartbeat on the database's
/// clock, never revived once expired, deleted at a clean stop.
@Suite("PostgreSQL node leases", .needsPostgres)
struct PostgresNodeLeaseTests {
    static let fast = NodeLeaseSettings(heartbeat: .milliseconds(100), lease: .seconds(10))

    /// The lease's end for `nodeID`, as microseconds since 1970 by the database's clock.
    func leaseUntil(_ nodeID: String, _ connection: PostgresConnection) throws -> Int64? {
        try connection.query("SELECT (extract(epoch FROM lease_until) * 1000000)::bigint AS until FROM nodes WHERE id = $1::uuid",
                             [nodeID]).first?.int64("until")
    }

    @Test("a started store registers its node; the heartbeat renews the lease; a clean stop deletes the row")
    func registersAndRenews() throws {
        let database = try TestDatabase()
        let connection = try database.connection()
        defer { connection.close() }
        let store = try database.open(lease: Self.fast)
        let nodeID = try #require(store.cluster?.nodeID)
        #expect(nodeID == store.nodeID, "the first registration uses the ID of the count rows")
        #expect(try eventually { try leaseUntil(nodeID, connection) != nil }, "registered at start")
        let first = try #require(try leaseUntil(nodeID, connection))
        #expect(try eventually { try (leaseUntil(nodeID, connection) ?? 0) > first }, "renewed by the heartbeat")
        let remaining = try #require(try connection.query("""
            SELECT extract(epoch FROM lease_until - now()) AS left FROM nodes WHERE id = $1::uuid
            """, [nodeID]).first?.optionalDouble("left"))
        #expect(remaining > 8 && remaining <= 10, "the lease runs from the database's now(): \(remaining) s left")
        #expect(store.cluster?.liveNodes == 1)
        store.close()
        #expect(try leaseUntil(nodeID, connection) == nil, "a clean stop deletes the node's row")
    }

    @Test("the live node count covers every node with an unexpired lease")
    func countsLiveNodes() throws {
        let database = try TestDatabase()
        let store = try database.open(lease: Self.fast)
        defer { store.close() }
        let other = NodeLease(nodeID: UUID().uuidString.lowercased(), target: PostgresConnectionString(database.url),
                              settings: Self.fast, logger: quietLogger)
        other.start()
        #expect(eventually { store.cluster?.liveNodes == 2 && other.membership.liveNodes == 2 })
        other.stop()
        #expect(eventually { store.cluster?.liveNodes == 1 }, "a stopped node is counted gone at the next heartbeat")
    }

    @Test("a lapsed lease is never renewed: the node registers again under a new ID")
    func lapsedLease() throws {
        let database = try TestDatabase()
        let connection = try database.connection()
        defer { connection.close() }
        let store = try database.open(lease: Self.fast)
        defer { store.close() }
        let nodeID = try #require(store.cluster?.nodeID)
        #expect(try eventually { try leaseUntil(nodeID, connection) != nil })
        #expect(eventually { store.lease.isHeld })
        // As if the process had been paused past its lease.
        try connection.execute("UPDATE nodes SET lease_until = now() - interval '1 second' WHERE id = $1::uuid", [nodeID])
        #expect(eventually { store.cluster?.nodeID != nodeID }, "registered again under a new ID")
        let fresh = try #require(store.cluster?.nodeID)
        #expect(try eventually { try leaseUntil(fresh, connection) != nil })
        let now = try #require(try connection.query("SELECT (extract(epoch FROM now()) * 1000000)::bigint AS now").first?.int64("now"))
        if let old = try leaseUntil(nodeID, connection) { #expect(old < now, "the expired lease stays expired") }
        #expect(try eventually { try leaseUntil(nodeID, connection) == nil }, "the rescue sweep deletes the expired row")
        #expect(eventually { store.lease.isHeld })
    }

    @Test("a lease shorter than three heartbeats is refused", arguments: [
        (NodeLeaseSettings(heartbeat: .seconds(5), lease: .seconds(14)), false),
        (NodeLeaseSettings(heartbeat: .seconds(5), lease: .seconds(15)), true),
        (NodeLeaseSettings(heartbeat: .zero, lease: .seconds(15)), false),
    ])
    func leaseAtLeastThreeHeartbeats(settings: NodeLeaseSettings, valid: Bool) throws {
        #expect((settings.problem == nil) == valid, "\(settings.problem ?? "")")
        guard !valid else { return }
        let database = try TestDatabase()
        #expect { _ = try database.open(lease: settings) } throws: { "\($0)".contains("heartbeat") }
    }
}

/// The heartbeat compares this node's clock with the database's, and says so in the log.
@Suite("PostgreSQL node clocks against the database's", .needsPostgres)
struct PostgresNodeClockTests {
    /// Beats a lease whose node clock is `offset` from the real one until it has renewed a
    /// few times; returns the warnings it logged.
    func warnings(offset: TimeInterval) throws -> [(message: String, offset: String)] {
        let database = try TestDatabase()
        let log = InMemoryLogHandler()
        let lease = NodeLease(nodeID: UUID().uuidString.lowercased(), target: PostgresConnectionString(database.url),
                              settings: PostgresNodeLeaseTests.fast, logger: Logger(label: "test") { _ in log },
                              wallClock: { Date().addingTimeInterval(offset) })
        lease.start()
        defer { lease.stop() }
        let connection = try database.connection()
        defer { connection.close() }
        func renewedAt() throws -> Double? {
            try connection.query("SELECT extract(epoch FROM renewed_at)::float8 AS at FROM nodes").first?.optionalDouble("at")
        }
        // Registered, then renewed for half a second more: five beats at least (one per 100 ms).
        #expect(try eventually { try renewedAt() != nil })
        let first = try #require(try renewedAt())
        #expect(try eventually { try (renewedAt() ?? 0) > first + 0.5 })
        return log.entries.filter { $0.level == .warning }.map { ("\($0.message)", "\($0.metadata["clock_offset_seconds"] ?? "")") }
    }

    @Test("a node clock two minutes ahead is logged once, with the offset; one in sync is not")
    func aheadIsLoggedOnce() throws {
        let ahead = try warnings(offset: 120)
        #expect(ahead.count == 1, "once, not at every beat: \(ahead)")
        #expect(ahead.first?.message.contains("ahead of the database's") == true && ahead.first?.offset.hasPrefix("12") == true, "\(ahead)")
        #expect(try warnings(offset: 0).isEmpty)
    }

    @Test("a node clock behind the database's is logged too")
    func behindIsLogged() throws {
        let behind = try warnings(offset: -30)
        #expect(behind.count == 1 && behind.first?.message.contains("behind the database's") == true, "\(behind)")
    }
}
