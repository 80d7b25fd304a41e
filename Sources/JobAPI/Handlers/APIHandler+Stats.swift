import EventHTTP
import Foundation
import JobCore

extension APIHandler {
    /// `GET /v1/stats`: jobs by state and by kind, queue depth, busy workers and the age of
    /// the oldest queued job. With API keys, a tenant sees only its own jobs (and its share of
    /// the busy workers); the pool's size is the same for everyone.
    func stats(_ request: HTTPRequest, owner: String?) {
        let wanted: String?? = access.isEnabled ? .some(owner) : .none
        guard executor.cluster != nil else {
            return respondStats(request, owner: owner, counts: executor.counts.snapshot(owner: wanted))
        }
        // Several nodes on one store: this node's counters know only the jobs it finished, so
        // the counts are the store's (read off the loop). The workers stay this node's.
        readStore(request, { executor throws(StoreError) in try executor.clusterCounts() ?? [:] }) { handler, request, counts in
            handler.respondStats(request, owner: owner, counts: JobCounts.select(counts, owner: wanted))
        }
    }

    private func respondStats(_ request: HTTPRequest, owner: String?, counts: [JobCounts.Key: Int]) {
        // Every kind appears, with zeros, even before its first job.
        var byState: [JobState: Int] = [:]
        var byKind = Dictionary(uniqueKeysWithValues: executor.kindNames.map { ($0, [JobState: Int]()) })
        for (key, count) in counts {
            byState[key.state, default: 0] += count
            byKind[key.kind, default: [:]][key.state, default: 0] += count
        }
        let pool = executor.statistics
        let (busy, oldestQueuedAt) = access.isEnabled
            ? executor.statistics(owner: owner)
            : (pool.running, pool.oldestQueuedAt)
        let now = Date()
        let deliveries = webhooks.deliveryCounts(owner: access.isEnabled ? .some(owner) : .none)
        respond(request, status: 200) { writer in
            writer.object { members in
                members.member("by_state") { $0.stateCounts(byState) }
                members.member("by_kind") { writer in
                    writer.object { kinds in
                        for kind in byKind.keys.sorted() { kinds.member(kind) { $0.stateCounts(byKind[kind] ?? [:]) } }
                    }
                }
                members.member("queue_depth") { $0.integer(byState[.queued] ?? 0) }
                members.member("workers") { $0.integer(pool.workers) }
                members.member("workers_busy") { $0.integer(busy) }
                // Only with a store shared by several nodes (PostgreSQL).
                if let cluster = executor.cluster {
                    members.member("node") { $0.string(cluster.nodeID) }
                    members.member("nodes") { $0.integer(cluster.liveNodes) }
                }
                members.member("oldest_queued_age_seconds") { writer in
                    guard let oldestQueuedAt else { return writer.null() }
                    writer.number((max(0, now.timeIntervalSince(oldestQueuedAt)) * 1000).rounded() / 1000)
                }
                // Completion events of finished jobs, by delivery state (the dashboard's webhook panel).
                members.member("webhooks") { writer in
                    writer.object { states in
                        for state in [WebhookState.pending, .delivered, .failed] { states.member(state.rawValue) { $0.integer(deliveries[state] ?? 0) } }
                    }
                }
            }
        }
    }

    /// `GET /openapi.yaml`: the contract this server implements.
    func serveOpenAPI(_ request: HTTPRequest) {
        request.respond(status: 200, headers: [("Content-Type", "application/yaml")], body: PackageResources.openapi_yaml)
    }
}

extension JSONWriter {
    /// `{"scheduled": n, "queued": n, ...}` with every state, in lifecycle order.
    mutating func stateCounts(_ counts: [JobState: Int]) {
        object { members in
            for state in JobState.allCases { members.member(state.rawValue) { $0.integer(counts[state] ?? 0) } }
        }
    }
}
