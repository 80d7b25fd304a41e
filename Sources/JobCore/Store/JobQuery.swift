import Foundation

/// Where a page of a job list starts: just after the job with this key, in `(created_at, id)`
/// order. The same pair names a job in the store.
public typealias JobCursor = JobKey

/// Which jobs a list shows. Every field narrows it; nil means any.
public struct JobFilter: Sendable, Hashable {
    public var status: JobState?
    public var kind: String?
    /// Only this tenant's jobs (when access control is on).
    public var owner: String?
    /// Jobs created at or after this time.
    public var createdFrom: Date?
    /// Jobs created before this time.
    public var createdBefore: Date?

    public init(status: JobState? = nil, kind: String? = nil, owner: String? = nil, createdFrom: Date? = nil, createdBefore: Date? = nil) {
        self.status = status
        self.kind = kind
        self.owner = owner
        self.createdFrom = createdFrom
        self.createdBefore = createdBefore
    }

    /// True if a job with these fields belongs in the list.
    public func matches(kind: String, owner: String?, status: JobState, createdAt: Date) -> Bool {
        (self.kind == nil || self.kind == kind) && (self.owner == nil || self.owner == owner)
            && (self.status == nil || self.status == status)
            && (createdFrom.map { createdAt >= $0 } ?? true) && (createdBefore.map { createdAt < $0 } ?? true)
    }
}

/// One page of a list, newest first, and where the next page starts.
public struct JobPage: Sendable {
    public var jobs: [JobSnapshot]
    public var nextCursor: JobCursor?

    public init(jobs: [JobSnapshot], nextCursor: JobCursor?) {
        self.jobs = jobs
        self.nextCursor = nextCursor
    }
}
