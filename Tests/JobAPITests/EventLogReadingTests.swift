import Foundation
@testable import JobCore
@testable import JobpoolApp
import Postgres
import PostgresTestSupport
import Testing

/// A node on PostgreSQL reads the cluster's event log only while something on it needs the
/// events (an open stream, a watched job of another node): otherwise every node would read
/// every event of the cluster back for nobody. What a reader arriving later is owed still
/// reaches it.
@Suite("The event log, read only while needed", .enabled(if: PostgresTestCluster.isAvailable, Comment(rawValue: PostgresTestCluster.skipMessage)))
struct EventLogReadingTests {
    @Test("with no stream open the log goes by unread; a stream resuming from before gets those events in order, once; a new stream starts after them")
    func readOnlyWhileNeeded() async throws {
        let store = StoreKind.postgres.makeStore()
        guard case .postgres(let url) = store else { return }
        let node = try TestServer { $0.store = store }
        defer { node.stop() }
        let database = try PostgresConnection(connectingTo: PostgresConnectionString(url))
        defer { database.close() }
        func logEnd() throws -> Int { try database.query("SELECT coalesce(max(id), 0) AS id FROM job_events").first?.int("id") ?? -1 }
        func succeededEvents(_ ids: [String]) throws -> Int {
            try database.query("SELECT count(*) AS n FROM job_events WHERE event = 'job.succeeded' AND job_id = ANY($1::uuid[])",
                               [PostgresArray(ids)]).first?.int("n") ?? -1
        }

        let first = try SSEConnection(port: node.port)
        let opened = await first.read { $0.contains { $0.name == "ready" } }
        let before = try #require(opened.first { $0.name == "ready" }?.id)
        first.socket.disconnect()
        #expect(try await eventually { !node.server.executor.storedEventNeed.isNeeded }, "the stream's close is counted")
        let position = try #require(node.server.store.eventLogPosition)

        // Two jobs run and finish with nobody here listening.
        var quiet: [String] = []
        for _ in 0..<2 {
            let done = try await node.client.submitWriteCode(headers: ["Prefer": "wait=20"])
            #expect(done.json["status"] as? String == "succeeded")
            quiet.append(try #require(done.json["id"] as? String))
        }
        // `Prefer: wait` answers once the job is done, maybe before its finish commits.
        #expect(try await eventually { try succeededEvents(quiet) == quiet.count })
        let end = try logEnd()
        #expect(try await eventually { node.server.executor.changes.storedSettled >= end }, "the settled end follows the log")
        #expect(node.server.store.eventLogPosition == position, "no event was read: nothing needed one")

        // A new stream starts at the settled end: the quiet jobs are behind it.
        let fresh = try SSEConnection(port: node.port)
        defer { fresh.socket.disconnect() }
        let freshOpened = await fresh.read { $0.contains { $0.name == "ready" } }
        #expect(try #require(freshOpened.first { $0.name == "ready" }?.id) >= end)
        // A stream resuming from before them gets their events now, in order, each once.
        let resumed = try SSEConnection(port: node.port, lastEventID: before)
        defer { resumed.socket.disconnect() }
        await resumed.read { events in quiet.allSatisfy { id in events.contains { $0.name == "job.succeeded" && $0.jobID == id } } }
        for id in quiet {
            #expect(resumed.jobEvents.filter { $0.jobID == id }.map(\.name) == ["job.created", "job.started", "job.succeeded"], "\(resumed.text)")
        }
        let ids = resumed.jobEvents.compactMap(\.id)
        #expect(ids == ids.sorted() && Set(ids).count == ids.count, "in ID order, once each")

        // Both see what happens next; the new one nothing from before its start.
        let next = try #require(try await node.client.submitWriteCode().json["id"] as? String)
        await fresh.read { $0.contains { $0.name == "job.succeeded" && $0.jobID == next } }
        await resumed.read { $0.contains { $0.name == "job.succeeded" && $0.jobID == next } }
        #expect(fresh.jobEvents.filter { $0.jobID == next }.map(\.name) == ["job.created", "job.started", "job.succeeded"], "\(fresh.text)")
        #expect(fresh.jobEvents.allSatisfy { !quiet.contains($0.jobID ?? "") }, "\(fresh.text)")
        #expect(try #require(node.server.store.eventLogPosition) > end, "read again while streams are open")
    }

    @Test("more events went by unread than the replay window keeps: none is read while nobody listens, and a stream resuming from before them is told to reload")
    func backlogPastTheWindow() async throws {
        let store = StoreKind.postgres.makeStore()
        let node = try TestServer { $0.store = store; $0.api.eventReplayWindow = 5 }
        defer { node.stop() }
        let first = try SSEConnection(port: node.port)
        let opened = await first.read { $0.contains { $0.name == "ready" } }
        let before = try #require(opened.first { $0.name == "ready" }?.id)
        first.socket.disconnect()
        #expect(try await eventually { !node.server.executor.storedEventNeed.isNeeded })
        let position = try #require(node.server.store.eventLogPosition)
        // Four jobs, twelve events, with nobody listening: more than the window's five.
        for _ in 0..<4 {
            let done = try await node.client.submitWriteCode(headers: ["Prefer": "wait=20"])
            #expect(done.json["status"] as? String == "succeeded")
        }
        #expect(node.server.store.eventLogPosition == position, "none of them was read")
        let resumed = try SSEConnection(port: node.port, lastEventID: before)
        defer { resumed.socket.disconnect() }
        let told = await resumed.read { $0.contains { $0.name == "reset" } }
        #expect(told.contains { $0.name == "reset" }, "\(resumed.text)")
        #expect(resumed.jobEvents.count <= 5, "at most the window's worth came before the reset: \(resumed.text)")
    }
}
