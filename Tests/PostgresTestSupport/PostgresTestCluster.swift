import Foundation
import Glibc
import Logging
import Postgres
import PostgresStore
import Synchronization

/// A private PostgreSQL cluster for the tests: one per test process, in a temporary folder,
/// listening on a Unix socket only (`listen_addresses=''`), with `fsync` off (tests need no
/// durability; production keeps PostgreSQL's defaults). Each test gets a database of its own,
/// copied from a template that already holds jobpool's schema.
///
/// As root (CI), `initdb` and `pg_ctl` run as the `postgres` user through `runuser`, since
/// initdb refuses root. The cluster is stopped on every path: at exit (`atexit`), and if the
/// test process dies without running its exit handlers (a crash, `kill -9`), by a small
/// watchdog shell that waits for this process to end.
///
/// ```swift
/// @Suite(.enabled(if: PostgresTestCluster.isAvailable, Comment(rawValue: PostgresTestCluster.skipMessage)))
/// struct MyTests {
///     @Test func something() throws {
///         let url = try PostgresTestCluster.shared().makeDatabase()
///     }
/// }
/// ```
public final class PostgresTestCluster: Sendable {
    /// Where PostgreSQL's programs are, if installed.
    public static let binFolder: String? = {
        var candidates: [String] = []
        if let bin = ProcessInfo.processInfo.environment["JOBPOOL_PG_BIN"] { candidates.append(bin) }
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
        candidates += versions.sorted { (Int($0) ?? 0) > (Int($1) ?? 0) }.map { "/usr/lib/postgresql/\($0)/bin" }
        return candidates.first { FileManager.default.isExecutableFile(atPath: "\($0)/initdb") }
    }()

    /// True when the PostgreSQL tests should run: the programs are installed, or this is CI
    /// (`CI=true`), where they must never be skipped (a missing install then fails them).
    public static let isAvailable = binFolder != nil || ProcessInfo.processInfo.environment["CI"] == "true"

    public static let skipMessage = """
        PostgreSQL's programs (initdb, pg_ctl) were not found under /usr/lib/postgresql/*/bin, so the PostgreSQL \
        tests are skipped. Install them (apt-get install postgresql libpq-dev), or set JOBPOOL_PG_BIN.
        """

    /// The folder of the cluster: its data, its log and its socket.
    public let folder: String
    private let bin: String
    private let runAs: [String]
    private let watchdog: pid_t?
    private let stopped = Atomic<Bool>(false)
    private let nextDatabase = Atomic<Int>(0)
    private let options: String
    /// The test's own connection to the `postgres` database; made again by ``startServer()``.
    private let adminConnection: Mutex<PostgresConnection>
    private var admin: PostgresConnection { adminConnection.withLock { $0 } }

    private static let sharedCluster = Mutex<Result<PostgresTestCluster, PostgresTestClusterError>?>(nil)

    /// The cluster of this test process, started on first use.
    public static func shared() throws(PostgresTestClusterError) -> PostgresTestCluster {
        try sharedCluster.withLock { cluster throws(PostgresTestClusterError) -> PostgresTestCluster in
            if cluster == nil {
                cluster = Result { () throws(PostgresTestClusterError) in try PostgresTestCluster() }
                atexit { PostgresTestCluster.stopShared() }
            }
            return try cluster!.get()
        }
    }

    /// A cluster of its own, not the shared one, for a test that stops and starts the server
    /// (``stopServer()``, ``startServer()``) and must not take the other tests' databases down
    /// with it. The caller stops it with ``stop()`` (also done by the watchdog if the test
    /// process dies).
    ///
    /// Its commits are synchronous (`synchronous_commit=on`; the shared cluster turns that off
    /// for speed): ``stopServer()`` is a crash, and with asynchronous commits a crash loses the
    /// last transactions that PostgreSQL had already reported committed.
    public static func makePrivate() throws(PostgresTestClusterError) -> PostgresTestCluster {
        try PostgresTestCluster(synchronousCommit: true)
    }

    /// Stops the shared cluster, if it was started. Called at exit; safe to call again.
    public static func stopShared() {
        if case .success(let cluster)? = sharedCluster.withLock({ $0 }) { cluster.stop() }
    }

    private init(synchronousCommit: Bool = false) throws(PostgresTestClusterError) {
        guard let bin = Self.binFolder else {
            throw PostgresTestClusterError("PostgreSQL's programs were not found (install postgresql, or set JOBPOOL_PG_BIN); CI=true, so the PostgreSQL tests fail instead of being skipped")
        }
        self.bin = bin
        let isRoot = getuid() == 0
        runAs = isRoot ? ["/usr/sbin/runuser", "-u", "postgres", "--"] : []
        // A short path: a Unix socket's path must fit in 107 bytes.
        var template = Array("/tmp/jobpool-pg-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw PostgresTestClusterError("cannot make a temporary folder: \(String(cString: strerror(errno)))") }
        folder = String(cString: made)
        let log = "\(folder)/cluster.log"
        if isRoot {
            // initdb refuses to run as root; the folder and its log go to the postgres user.
            CommandRunner.run(["/bin/chown", "postgres", folder])
            CommandRunner.run(["/usr/sbin/runuser", "-u", "postgres", "--", "/usr/bin/touch", log])
        }
        let initialized = CommandRunner.run(runAs + ["\(bin)/initdb", "-D", "\(folder)/data", "-A", "trust", "-U", "postgres",
                                                     "--no-sync", "-E", "UTF8"], output: log)
        guard initialized == 0 else {
            throw PostgresTestClusterError("initdb failed (exit \(initialized)); see \(log)")
        }
        options = "-k \(folder) -c listen_addresses='' -c fsync=off -c synchronous_commit=\(synchronousCommit ? "on" : "off") -c full_page_writes=off -c max_connections=300"
        let started = CommandRunner.run(runAs + ["\(bin)/pg_ctl", "-D", "\(folder)/data", "-l", "\(folder)/server.log", "-w",
                                                "-o", options, "start"], output: log)
        guard started == 0 else {
            throw PostgresTestClusterError("pg_ctl start failed (exit \(started)); see \(log) and \(folder)/server.log")
        }
        // Stops the cluster if this process ends without its exit handlers (a crash, kill -9).
        let stop = (runAs + ["\(bin)/pg_ctl", "-D", "\(folder)/data", "-m", "immediate", "-w", "stop"]).joined(separator: " ")
        watchdog = CommandRunner.spawn(["/bin/sh", "-c",
            "while kill -0 \(getpid()) 2>/dev/null; do sleep 1; done; \(stop) >/dev/null 2>&1; rm -rf \(folder)"])
        do {
            let admin = try PostgresConnection(connectingTo: PostgresConnectionString(Self.url(folder: folder, database: "postgres")))
            adminConnection = Mutex(admin)
            try admin.execute("CREATE DATABASE jobpool_template")
            // The template holds the schema: a test's store then starts without migrating.
            var logger = Logger(label: "postgres-test-cluster")
            logger.logLevel = .warning
            try PostgresJobStore(url: Self.url(folder: folder, database: "jobpool_template"), logger: logger).close()
        } catch {
            Self.stopCluster(folder: folder, bin: bin, runAs: runAs, watchdog: watchdog)
            throw PostgresTestClusterError("the test cluster started but could not be prepared: \(error)")
        }
    }

    /// The libpq URI of `database` in the cluster whose socket is in `folder`.
    static func url(folder: String, database: String) -> String {
        "postgresql://postgres@/\(database)?host=\(folder)"
    }

    /// A new database holding jobpool's schema, for one test. Returns its URI.
    public func makeDatabase() throws -> String {
        let name = "test_\(nextDatabase.add(1, ordering: .relaxed).newValue)"
        try admin.execute("CREATE DATABASE \(name) TEMPLATE jobpool_template")
        return Self.url(folder: folder, database: name)
    }

    /// A new empty database (no schema), for tests of migrations. Returns its URI.
    public func makeEmptyDatabase() throws -> String {
        let name = "empty_\(nextDatabase.add(1, ordering: .relaxed).newValue)"
        try admin.execute("CREATE DATABASE \(name)")
        return Self.url(folder: folder, database: name)
    }

    /// Removes a database made by ``makeDatabase()`` (closing its connections).
    public func dropDatabase(url: String) {
        _ = try? admin.execute("DROP DATABASE IF EXISTS \(Self.databaseName(url: url)) WITH (FORCE)")
    }

    /// The name of the database in a URI made here: between `@/` and `?`.
    public static func databaseName(url: String) -> String {
        let path = url.components(separatedBy: "@/").last ?? url
        return String(path.prefix { $0 != "?" })
    }

    /// Stops the server at once (`pg_ctl stop -m immediate`: no checkpoint, every connection
    /// cut, as a crash or a pulled plug would), keeping its folder for ``startServer()``.
    public func stopServer() throws(PostgresTestClusterError) {
        let status = CommandRunner.run(runAs + ["\(bin)/pg_ctl", "-D", "\(folder)/data", "-m", "immediate", "-w", "stop"],
                                       output: "\(folder)/cluster.log")
        guard status == 0 else { throw PostgresTestClusterError("pg_ctl stop failed (exit \(status)); see \(folder)/cluster.log") }
    }

    /// Starts the server again on the same folder and socket (after ``stopServer()``), with
    /// crash recovery, and connects the test's own connection again.
    public func startServer() throws(PostgresTestClusterError) {
        let status = CommandRunner.run(runAs + ["\(bin)/pg_ctl", "-D", "\(folder)/data", "-l", "\(folder)/server.log", "-w",
                                                "-o", options, "start"], output: "\(folder)/cluster.log")
        guard status == 0 else { throw PostgresTestClusterError("pg_ctl start failed (exit \(status)); see \(folder)/server.log") }
        do {
            let fresh = try PostgresConnection(connectingTo: PostgresConnectionString(Self.url(folder: folder, database: "postgres")))
            adminConnection.withLock { old in
                old.close()
                old = fresh
            }
        } catch {
            throw PostgresTestClusterError("the server started again but cannot be reached: \(error)")
        }
    }

    /// Stops the server and removes the folder. Only the first call does anything.
    public func stop() {
        guard !stopped.exchange(true, ordering: .relaxed) else { return }
        admin.close()
        Self.stopCluster(folder: folder, bin: bin, runAs: runAs, watchdog: watchdog)
    }

    private static func stopCluster(folder: String, bin: String, runAs: [String], watchdog: pid_t?) {
        CommandRunner.run(runAs + ["\(bin)/pg_ctl", "-D", "\(folder)/data", "-m", "fast", "-w", "stop"])
        if let watchdog { kill(watchdog, SIGTERM) }
        CommandRunner.run(["/bin/rm", "-rf", folder])
    }
}

/// Why the test cluster could not be had.
public struct PostgresTestClusterError: Error, Sendable, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
