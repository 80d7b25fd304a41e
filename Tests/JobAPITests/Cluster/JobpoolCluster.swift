import Foundation
import Glibc
import Postgres
import PostgresTestSupport
import Synchronization

/// Real `jobpool serve` processes on one PostgreSQL database, for the cluster tests: each node
/// has a name, a worker count and its own process, which a test may kill (`kill -9`), pause
/// (`kill -STOP`) and start again. ``stop()`` ends every process by its PID (use `defer`).
///
/// Leases are short (a heartbeat a second, a lease of three, the least the server allows), so
/// that a dead node's jobs come back within seconds.
final class JobpoolCluster: Sendable {
    /// The URI of the database the nodes share.
    let url: String
    let nodes: [ClusterNode]
    /// The test cluster the database is in, if it is dropped at the end.
    private let owner: PostgresTestCluster?
    private let sql: Mutex<PostgresConnection?> = Mutex(nil)

    /// Options every node gets besides its name's workers: short leases, webhooks allowed to
    /// the sinks on 127.0.0.2, a webhook retry a second, and a short drain at stop.
    static let commonArguments = [
        "--heartbeat-seconds", "1", "--lease-seconds", "3",
        "--allow-cidr", "127.0.0.2/32", "--webhook-retry-schedule", "1s,1s,1s",
        "--shutdown-grace", "2", "--log-level", "info",
    ]

    /// Nodes named and sized by `nodes` (name, workers) on a new database of the shared test
    /// cluster (or on `url`); started in order unless `start` is false.
    init(nodes specs: [(name: String, workers: Int)], url: String? = nil, start: Bool = true) throws {
        let database: String
        if let url {
            database = url
            owner = nil
        } else {
            let cluster = try PostgresTestCluster.shared()
            database = try cluster.makeDatabase()
            owner = cluster
        }
        self.url = database
        nodes = specs.map { ClusterNode(name: $0.name, arguments: ["serve", "--store", database, "--port", "0",
                                                                     "--workers", "\($0.workers)"] + Self.commonArguments) }
        guard start else { return }
        do {
            for node in nodes { try node.start() }
        } catch {
            stop()
            throw error
        }
    }

    subscript(name: String) -> ClusterNode { nodes.first { $0.name == name }! }

    /// Ends every node by its PID, closes the test's connection and drops the database.
    func stop() {
        for node in nodes { node.stop() }
        sql.withLock { connection in
            connection?.close()
            connection = nil
        }
        if let owner { owner.dropDatabase(url: url) }
    }

    /// What every node wrote to standard error, for a failure's message.
    var logs: String {
        nodes.map { "---- node \($0.name) ----\n\($0.log.suffix(6000))" }.joined(separator: "\n")
    }

    /// Runs `statement` on the shared database through the test's own connection (made again
    /// after the server was restarted).
    func query(_ statement: String, _ parameters: [String] = []) throws -> PostgresRows {
        try sql.withLock { connection throws -> PostgresRows in
            if connection == nil { connection = try PostgresConnection(connectingTo: PostgresConnectionString(url)) }
            do {
                return try connection!.query(statement, parameters.map { $0 as (any PostgresBindable)? })
            } catch {
                connection?.close()
                connection = nil
                throw error
            }
        }
    }

    /// The node whose process runs job `id` now, by the job row's node and that node's PID.
    func runningNode(of id: String) throws -> ClusterNode? {
        let rows = try query("""
            SELECT n.pid FROM jobs j JOIN nodes n ON n.id = j.node WHERE j.id = $1::uuid AND j.status = 'running'
            """, [id])
        guard let pid = try rows.first?.int("pid") else { return nil }
        return nodes.first { $0.pid == Int32(pid) }
    }

    /// The job's attempts as `attempt outcome` lines, in order, e.g. `["1 lost", "2 succeeded"]`.
    func attempts(of id: String) throws -> [String] {
        try query("SELECT attempt, outcome FROM job_attempt_history WHERE job_id = $1::uuid ORDER BY attempt", [id])
            .map { "\(try $0.int("attempt")) \(try $0.string("outcome"))" }
    }

    /// How many final events (`job.succeeded`, `job.failed`, `job.cancelled`) the event log
    /// holds for job `id`: exactly one for a job that finished once.
    func finalEventCount(of id: String) throws -> Int {
        try query("""
            SELECT count(*) AS n FROM job_events
            WHERE job_id = $1::uuid AND event IN ('job.succeeded', 'job.failed', 'job.cancelled')
            """, [id]).first?.int("n") ?? 0
    }

    /// The backend PIDs of the nodes' `LISTEN` connections on this database.
    func listenerBackends() throws -> Set<Int> {
        Set(try query("""
            SELECT pid FROM pg_stat_activity WHERE application_name = 'jobpool-listener' AND datname = current_database()
            """).map { try $0.int("pid") })
    }
}

/// One node of a ``JobpoolCluster``: a `jobpool serve` process that may be killed and
/// started again with the same options (on a new port).
final class ClusterNode: Sendable {
    let name: String
    let arguments: [String]
    private let current = Mutex<(process: JobpoolProcess, port: Int)?>(nil)
    /// The logs of this node's earlier processes (killed ones included).
    private let earlierLogs = Mutex("")

    init(name: String, arguments: [String]) {
        self.name = name
        self.arguments = arguments
    }

    /// Starts the node's process (after a kill, a new one) and waits until it listens.
    func start() throws {
        let process = try JobpoolProcess(arguments)
        do {
            let port = try process.waitUntilListening()
            current.withLock { $0 = (process, port) }
        } catch {
            process.stop()
            throw error
        }
    }

    private var process: JobpoolProcess? { current.withLock { $0?.process } }
    var pid: Int32? { process?.pid }
    var port: Int { current.withLock { $0?.port ?? 0 } }
    var client: TestHTTPClient { TestHTTPClient(baseURL: "http://127.0.0.1:\(port)") }
    var log: String { earlierLogs.withLock { $0 } + (process?.log ?? "") }

    /// `kill -9`: the process ends at once, leaving its node row and its running jobs behind.
    func kill9() {
        guard let process else { return }
        process.send(SIGKILL)
        _ = process.waitForExit(timeout: .seconds(10))
        let log = process.log
        earlierLogs.withLock { $0 += log }
        current.withLock { $0 = nil }
    }

    /// Kills the process with `kill -9` and starts a new one.
    func restartAfterKill() throws {
        kill9()
        try start()
    }

    func send(_ signal: Int32) { process?.send(signal) }

    /// Ends the process by its PID: a paused one is woken first, so that SIGTERM reaches it.
    func stop() {
        guard let process else { return }
        process.send(SIGCONT)
        process.stop()
    }

    /// Submits `body` (JSON) here; returns the job's ID, or throws with the answer.
    func submit(_ body: String, headers: [String: String] = [:]) async throws -> String {
        let response = try await client.post("/v1/jobs", body, headers: headers)
        guard response.status == 202 || response.status == 200, let id = response.json["id"] as? String else {
            throw TestFailure("node \(name) answered the submission with \(response.status): \(response.text)")
        }
        return id
    }

    /// The sum of a metric's samples in this node's `/metrics` (every label set), or nil if absent.
    func metric(_ name: String) async throws -> Double? {
        let text = try await client.get("/metrics").text
        let values = text.split(separator: "\n").compactMap { line -> Double? in
            guard line.hasPrefix(name), let last = line.split(separator: " ").last else { return nil }
            let rest = line.dropFirst(name.count)
            guard rest.first == " " || rest.first == "{" else { return nil }
            return Double(last)
        }
        return values.isEmpty ? nil : values.reduce(0, +)
    }
}
