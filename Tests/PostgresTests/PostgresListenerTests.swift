import Foundation
import Postgres
import StoreTestSupport
import Synchronization
import Testing
@testable import JobCore
@testable import PostgresStore

/// The listener: one dedicated LISTEN connection per node, woken by the other nodes' commits,
/// reconnecting by itself, and re-checking after a reconnect and on its ~1 s poll.
@Suite("PostgreSQL listener (LISTEN/NOTIFY)", .needsPostgres)
struct PostgresListenerTests {
    /// What a listener was told.
    final class Heard: Sendable {
        let notices = Mutex<[PostgresNotice]>([])
        let rechecks = Mutex<[PostgresListener.Recheck]>([])

        var handlers: PostgresListener.Handlers {
            PostgresListener.Handlers(
                notified: { [self] notice, _ in notices.withLock { $0.append(notice) } },
                recheck: { [self] reason, connection in
                    _ = try connection.query("SELECT 1") // the connection is usable for queries
                    rechecks.withLock { $0.append(reason) }
                })
        }

        func heard(_ condition: (PostgresNotice) -> Bool) -> Bool { notices.withLock { $0.contains(where: condition) } }
    }

    func listener(_ database: TestDatabase, _ heard: Heard, poll: Duration = .seconds(30)) -> PostgresListener {
        let listener = PostgresListener(target: PostgresConnectionString(database.url), logger: quietLogger, pollInterval: poll)
        listener.connect(heard.handlers)
        listener.start()
        #expect(eventually { listener.backendPID.load(ordering: .relaxed) != 0 }, "listening")
        return listener
    }

    @Test("a notification on the jobpool channel reaches the listener, with its payload read back")
    func receives() throws {
        let database = try TestDatabase()
        let heard = Heard()
        let listener = listener(database, heard)
        defer { listener.stop() }
        let connection = try database.connection()
        defer { connection.close() }
        let id = JobID().description
        try connection.notify(PostgresListener.channel, payload: PostgresNotice(work: true, cancels: [id]).payload)
        try connection.notify("some_other_channel", payload: "events")
        #expect(eventually { heard.heard { $0.work && $0.cancels == [id] && !$0.events } })
        #expect(heard.notices.withLock { $0.count } == 1, "only the jobpool channel")
    }

    @Test("after pg_terminate_backend the listener reconnects by itself, re-checks, and hears notifications again")
    func reconnects() throws {
        let database = try TestDatabase()
        let heard = Heard()
        let listener = listener(database, heard)
        defer { listener.stop() }
        let first = listener.backendPID.load(ordering: .relaxed)
        let connection = try database.connection()
        defer { connection.close() }
        #expect(try connection.query("SELECT pg_terminate_backend($1::int) AS done", [first]).first?.bool("done") == true)
        #expect(eventually { heard.rechecks.withLock { $0.contains(.reconnected) } }, "a reconnect tells its consumers to re-check")
        #expect(listener.connectionCount == 2)
        let second = listener.backendPID.load(ordering: .relaxed)
        #expect(second != 0 && second != first)
        try connection.notify(PostgresListener.channel, payload: "events")
        #expect(eventually { heard.heard { $0.events } }, "listening again on the new connection")
    }

    @Test("without any notification, the listener still polls about once a second")
    func polls() throws {
        let database = try TestDatabase()
        let heard = Heard()
        let listener = listener(database, heard, poll: .milliseconds(200))
        defer { listener.stop() }
        #expect(eventually { heard.rechecks.withLock { $0.filter { $0 == .poll }.count } >= 3 })
    }

    @Test("a payload too long for NOTIFY drops the IDs and asks for a re-check instead")
    func longPayload() {
        let ids = (0..<400).map { _ in JobID().description }
        let notice = PostgresNotice(events: true, cancels: ids)
        #expect(notice.payload.utf8.count < 8000)
        let read = PostgresNotice(payload: notice.payload)
        #expect(read.events && read.isTruncated && read.cancels.isEmpty)
        let short = PostgresNotice(payload: PostgresNotice(cancels: Array(ids.prefix(3))).payload)
        #expect(short.cancels == Array(ids.prefix(3)) && !short.isTruncated)
    }

    @Test("each committed batch of the store sends one notification naming what it holds")
    func storeNotifies() throws {
        let database = try TestDatabase()
        let heard = Heard()
        let listener = listener(database, heard)
        defer { listener.stop() }
        let store = try database.open()
        defer { store.close() }
        let job = makeJob(createdAt: epoch)
        try write(store, .submitted([job])).get()
        #expect(eventually { heard.heard { $0.work && $0.events } })
        try write(store, .cancelRequested(job.key, at: Date())).get()
        #expect(eventually { heard.heard { $0.cancels == [job.id.description] && !$0.work } })
    }
}
