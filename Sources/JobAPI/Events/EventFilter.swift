import JobCore

/// Which changes one `GET /v1/events` stream is sent: its tenant's, and those of the kinds and
/// states it asked for. Streams with equal filters share one rendering of each batch.
struct EventFilter: Hashable {
    /// Only this owner's jobs; `nil` when access control is off (every job).
    var owner: String??
    /// Only these kinds; nil for all.
    var kinds: Set<String>?
    /// Only changes that leave a job in one of these states; nil for all.
    var statuses: Set<JobState>?

    func matches(_ change: RecordedChange) -> Bool {
        if case .some(let wanted) = owner, change.owner != wanted { return false }
        if let kinds, !kinds.contains(change.kind) { return false }
        if let statuses, !statuses.contains(change.status) { return false }
        return true
    }
}
