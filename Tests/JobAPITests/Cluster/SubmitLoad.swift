import Foundation
import Synchronization

/// A steady submit load on a cluster's nodes: one loop per node, each submitting one job after
/// the other to that node's current port (it follows restarts), noting what was answered.
/// ``stop()`` ends the loops (call it on every path); ``finish()`` also waits for them.
final class SubmitLoad: Sendable {
    struct Tally: Sendable {
        /// Jobs answered 202: the server promised to keep them.
        var acknowledged: [String] = []
        var unavailable = 0
        var unavailableWithoutRetryAfter = 0
        /// Other answers, by status.
        var other: [Int: Int] = [:]
        /// Requests that got no answer (a node killed or starting).
        var failedRequests = 0
    }

    /// What the loops share with the test.
    private final class Shared: Sendable {
        let tally = Mutex(Tally())
        let stopped = Atomic<Bool>(false)
    }

    private let shared: Shared
    private let loops: [Task<Void, Never>]

    init(nodes: [ClusterNode], body: String) {
        let shared = Shared()
        self.shared = shared
        loops = nodes.map { node in
            Task {
                while !shared.stopped.load(ordering: .relaxed) {
                    do {
                        let response = try await node.client.post("/v1/jobs", body)
                        shared.tally.withLock { tally in
                            switch response.status {
                            case 202:
                                if let id = response.json["id"] as? String { tally.acknowledged.append(id) }
                            case 503:
                                tally.unavailable += 1
                                if response.header("Retry-After") == nil { tally.unavailableWithoutRetryAfter += 1 }
                            default:
                                tally.other[response.status, default: 0] += 1
                            }
                        }
                        // A 503 asks for a pause: a short one, so the outage is sampled often.
                        if response.status != 202 { try? await Task.sleep(for: .milliseconds(100)) }
                    } catch {
                        shared.tally.withLock { $0.failedRequests += 1 }
                        try? await Task.sleep(for: .milliseconds(50))
                    }
                }
            }
        }
    }

    var tally: Tally { shared.tally.withLock { $0 } }
    var acknowledgedCount: Int { shared.tally.withLock { $0.acknowledged.count } }

    func stop() { shared.stopped.store(true, ordering: .relaxed) }

    /// Stops the loops and waits until each has ended; returns what they were answered.
    func finish() async -> Tally {
        stop()
        for loop in loops { await loop.value }
        return tally
    }
}

extension JobpoolCluster {
    /// What became of acknowledged jobs: missing from the table, not final yet, or with more
    /// than one final result (final events in the log: every finish that lands writes one, and
    /// since schema 10 a finish writes no attempt row to count instead).
    struct Audit: Sendable, CustomStringConvertible {
        var acknowledged = 0
        var lost: [String] = []
        var notFinal: [String] = []
        var twoFinalResults: [String] = []

        var description: String {
            "acknowledged \(acknowledged), lost \(lost.count), two final results \(twoFinalResults.count), not final \(notFinal.count)"
        }
    }

    func audit(_ ids: [String]) throws -> Audit {
        let array = "{" + ids.joined(separator: ",") + "}"
        let statuses = Dictionary(uniqueKeysWithValues: try query(
            "SELECT id::text AS id, status FROM jobs WHERE id = ANY($1::uuid[])", [array]
        ).map { (try $0.string("id"), try $0.string("status")) })
        let twice = try query("""
            SELECT job_id::text AS id FROM job_events
            WHERE job_id = ANY($1::uuid[]) AND event IN ('job.succeeded', 'job.failed', 'job.cancelled')
            GROUP BY job_id HAVING count(*) > 1
            """, [array]).map { try $0.string("id") }
        let final: Set = ["succeeded", "failed", "cancelled"]
        return Audit(acknowledged: ids.count,
                     lost: ids.filter { statuses[$0.lowercased()] == nil },
                     notFinal: ids.filter { statuses[$0.lowercased()].map { !final.contains($0) } ?? false },
                     twoFinalResults: twice)
    }

    /// The rows of jobs `ids` (at most ten), and their attempts, for a failure's message.
    func describe(_ ids: [String]) -> String {
        let array = "{" + ids.prefix(10).joined(separator: ",") + "}"
        let jobs = (try? query("""
            SELECT j.id::text AS id, j.status, j.attempt, coalesce(j.node::text, '-') AS node,
                   coalesce((SELECT string_agg(a.attempt || ' ' || a.outcome || ' ' || coalesce(a.node::text, '-'), '; ')
                             FROM job_attempt_history a WHERE a.job_id = j.id), '') AS attempts
            FROM jobs j WHERE j.id = ANY($1::uuid[])
            """, [array]).map { "\(try $0.string("id")) \(try $0.string("status")) attempt \(try $0.int("attempt")) node \(try $0.string("node")) [\(try $0.string("attempts"))]" }) ?? []
        let nodes = (try? query("SELECT id::text AS id, pid, lease_until > now() AS live FROM nodes")
            .map { "node \(try $0.string("id")) pid \(try $0.int("pid")) live \(try $0.bool("live"))" }) ?? []
        return (jobs + nodes).joined(separator: "\n")
    }

    /// Node rows whose lease holds now, by the database's clock.
    func liveNodeCount() throws -> Int {
        try query("SELECT count(*) AS n FROM nodes WHERE lease_until > now()").first?.int("n") ?? 0
    }
}
