import Foundation
import Postgres
import PostgresTestSupport
import Testing

@Suite("Connection strings: the password never shows")
struct ConnectionStringTests {
    @Test("URIs, keyword strings, query parameters and quoted values are masked",
          arguments: [
              ("postgres://jobpool:s3cret-pass@db.example:5432/jobs", "postgres://jobpool:***@db.example:5432/jobs"),
              ("postgresql://jobpool:s3cret-pass@db/jobs?sslmode=require", "postgresql://jobpool:***@db/jobs?sslmode=require"),
              ("postgresql://jobpool:p%40ss@db/jobs", "postgresql://jobpool:***@db/jobs"),
              ("postgres://jobpool@db/jobs?password=s3cret-pass&sslmode=require", "postgres://jobpool@db/jobs?password=***&sslmode=require"),
              ("host=db user=jobpool password=s3cret-pass dbname=jobs", "host=db user=jobpool password=*** dbname=jobs"),
              ("host=db password = 'it''s a \\' secret' dbname=jobs", "host=db password = *** dbname=jobs"),
              ("PASSWORD=s3cret-pass", "PASSWORD=***"),
              ("postgres://jobpool@db/jobs", "postgres://jobpool@db/jobs"),
              ("postgres:///jobs?host=/tmp/x", "postgres:///jobs?host=/tmp/x"),
          ])
    func redacted(text: String, expected: String) {
        #expect(PostgresConnectionString(text).redacted == expected)
        #expect(!PostgresConnectionString(text).description.contains("s3cret"))
    }

    @Test("a message that repeats the password (decoded, or in other words) is scrubbed")
    func scrubbed() {
        let target = PostgresConnectionString("postgresql://jobpool:p%40ssw0rd@db/jobs")
        let message = target.scrub("FATAL: bad auth for p@ssw0rd at postgresql://jobpool:p%40ssw0rd@db/jobs")
        #expect(!message.contains("p@ssw0rd") && !message.contains("p%40ssw0rd"), "\(message)")
        #expect(message.contains("postgresql://jobpool:***@db/jobs"))
    }

    @Test("a failed connection says where it tried to go, without the password")
    func failedConnection() {
        let url = "postgresql://jobpool:s3cret-pass@/jobs?host=/nonexistent-jobpool-socket-folder&connect_timeout=2"
        do {
            _ = try PostgresConnection(connectingTo: PostgresConnectionString(url))
            Issue.record("connected to a folder that does not exist")
        } catch {
            #expect(error.isConnectionLost)
            #expect(!"\(error)".contains("s3cret"), "\(error)")
            #expect("\(error)".contains("jobpool:***@"), "\(error)")
        }
    }
}

@Suite("PostgreSQL connections and pool", .needsPostgres)
struct ConnectionTests {
    @Test("parameters and typed values round-trip; errors carry their SQLSTATE")
    func roundTrip() throws {
        let database = try TestDatabase(empty: true)
        let connection = try database.connection()
        defer { connection.close() }
        let row = try #require(try connection.query(
            "SELECT $1::text AS t, $2::bigint AS i, $3::bool AS b, $4::float8 AS d, $5::bytea AS y, $6::text AS n",
            ["it's \"quoted\" \\ é", Int64.max, true, 2.5, PostgresBytes([0, 1, 254, 255]), nil]).first)
        #expect(try row.string("t") == "it's \"quoted\" \\ é")
        #expect(try row.int64("i") == .max)
        #expect(try row.bool("b"))
        #expect(try row.optionalDouble("d") == 2.5)
        #expect(try row.bytes("y") == [0, 1, 254, 255])
        #expect(try row.optionalString("n") == nil)
        let array = try connection.query("SELECT array_length($1::text[], 1) AS n, ($1::text[])[2] AS second",
                                         [PostgresArray(["a", "b\"c,{d}", "e"])])
        #expect(try array.first?.int("n") == 3)
        #expect(try array.first?.string("second") == "b\"c,{d}")
        do {
            try connection.execute("SELECT 1/0")
            Issue.record("division by zero succeeded")
        } catch {
            #expect(error.sqlState == "22012")
            #expect(error.isRefusalOfData)
            #expect(!error.isConnectionLost)
        }
        // The connection is still usable after an error, and transactions roll back on a throw.
        try connection.execute("CREATE TABLE t (n int PRIMARY KEY)")
        #expect(throws: PostgresError.self) {
            try connection.transaction {
                try connection.execute("INSERT INTO t VALUES (1)")
                try connection.execute("INSERT INTO t VALUES (1)")
            }
        }
        #expect(try connection.query("SELECT count(*) AS n FROM t").first?.int("n") == 0)
    }

    @Test("the pool reuses connections, drops a lost one, and a read retries once on a new one")
    func poolRecovers() throws {
        let database = try TestDatabase(empty: true)
        let pool = PostgresConnectionPool(target: PostgresConnectionString(database.url), size: 2)
        defer { pool.close() }
        let first = try pool.withConnection { try $0.query("SELECT pg_backend_pid() AS pid").first!.int("pid") }
        let again = try pool.withConnection { try $0.query("SELECT pg_backend_pid() AS pid").first!.int("pid") }
        #expect(first == again, "an idle connection is reused")
        let admin = try database.connection()
        defer { admin.close() }
        try admin.execute("SELECT pg_terminate_backend($1::int)", [first])
        let after = try pool.withConnection(retryIfStale: true) { try $0.query("SELECT pg_backend_pid() AS pid").first!.int("pid") }
        #expect(after != first)
    }

    @Test("LISTEN: the socket is there to watch, and notifications are read without blocking")
    func notifications() throws {
        let database = try TestDatabase(empty: true)
        let listener = try database.connection()
        let sender = try database.connection()
        defer { listener.close(); sender.close() }
        try listener.execute("LISTEN jobpool_test")
        #expect(listener.socketDescriptor >= 0)
        #expect(try listener.receiveNotifications().isEmpty)
        try sender.execute("SELECT pg_notify('jobpool_test', 'hello')")
        var received: [PostgresNotification] = []
        let deadline = ContinuousClock.now + .seconds(5)
        while received.isEmpty, ContinuousClock.now < deadline {
            var descriptor = pollfd(fd: listener.socketDescriptor, events: Int16(POLLIN), revents: 0)
            _ = poll(&descriptor, 1, 100)
            received += try listener.receiveNotifications()
        }
        #expect(received.map(\.channel) == ["jobpool_test"])
        #expect(received.map(\.payload) == ["hello"])
    }
}
