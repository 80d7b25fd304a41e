import Foundation
import JobCore
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
