/// How often a node renews its lease, and for how long each renewal holds
/// (`--heartbeat-seconds`, `--lease-seconds`).
///
/// A node whose lease lapses is presumed dead: the others take back its running jobs. So the
/// lease must outlast a few missed heartbeats (a loaded machine can pause a process for a
/// second): it is at least three heartbeats long.
public struct NodeLeaseSettings: Sendable, Equatable {
    /// The time between two renewals.
    public var heartbeat: Duration
    /// How long a renewal holds, counted by the database's clock from the renewal.
    public var lease: Duration

    public init(heartbeat: Duration = .seconds(5), lease: Duration = .seconds(30)) {
        self.heartbeat = heartbeat
        self.lease = lease
    }

    /// Why these settings cannot be used, in words for the operator; nil when they can.
    public var problem: String? {
        guard heartbeat > .zero else { return "--heartbeat-seconds must be more than 0." }
        guard lease >= heartbeat * 3 else {
            return "--lease-seconds (\(lease.components.seconds)) must be at least 3 times --heartbeat-seconds (\(heartbeat.components.seconds)), so that one late heartbeat does not let the lease lapse."
        }
        return nil
    }
}
