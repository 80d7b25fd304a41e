/// Where this process stands in a cluster of nodes that share one store: its node ID and how
/// many nodes hold a live lease. Only a shared store (PostgreSQL) has one; `/v1/stats` and
/// `/metrics` show it.
public struct ClusterMembership: Sendable, Equatable {
    /// This node's current ID. It changes when the node finds its lease lapsed and registers
    /// again: an expired lease is never revived.
    public var nodeID: String
    /// Nodes whose lease had not expired at the last heartbeat, this one included.
    public var liveNodes: Int

    public init(nodeID: String, liveNodes: Int) {
        self.nodeID = nodeID
        self.liveNodes = liveNodes
    }
}

extension JobStore {
    /// Nil for a store one process owns (SQLite, memory).
    public var cluster: ClusterMembership? { nil }
}
