import Foundation
import GRDB
import JobCore

/// The SQL for one page of a job list: newest first, strictly after the cursor, with the filter
/// served by one index, so that a page costs a seek and `limit` rows however many jobs are stored.
///
/// The index is chosen here rather than left to the planner, which has no statistics: the
/// columns that must not drive the scan are written `+column`, which SQLite will not look up
/// in an index. In order of preference:
/// - owner and status: `jobs_by_owner_status`;
/// - status: `jobs_by_status` (so `?status=failed` seeks to the failed jobs even when they are
///   all among the oldest of a million);
/// - owner: `jobs_by_owner`;
/// - kind: `jobs_by_kind`;
/// - none: the primary key, `(created_at, id)`.
///
/// The created-at range and the cursor bound the same index's `(created_at, id)` tail. Of an
/// upper bound from `createdBefore` and one from the cursor only the tighter is written:
/// SQLite would use one of two and filter with the other, walking the rows between them.
struct JobListQuery {
    var sql: String
    var arguments: StatementArguments

    init(filter: JobFilter, limit: Int, after cursor: JobCursor?) {
        var terms: [String] = []
        var arguments: [(any DatabaseValueConvertible)?] = []
        // One of owner, status, kind leads the index; the others are filters.
        let leadsWithOwner = filter.owner != nil
        let leadsWithStatus = filter.status != nil
        if let owner = filter.owner {
            terms.append("j.owner = ?")
            arguments.append(owner)
        }
        if let status = filter.status {
            terms.append("j.status = ?")
            arguments.append(status.rawValue)
        }
        if let kind = filter.kind {
            terms.append(leadsWithOwner || leadsWithStatus ? "+j.kind = ?" : "j.kind = ?")
            arguments.append(kind)
        }
        if let from = filter.createdFrom {
            terms.append("j.created_at >= ?")
            arguments.append(StoredRows.firstMicros(notBefore: from))
        }
        let before = filter.createdBefore.map(StoredRows.firstMicros(notBefore:))
        if let cursor, before.map({ $0 > StoredRows.micros(cursor.createdAt) }) ?? true {
            terms.append("(j.created_at, j.id) < (?, ?)")
            arguments.append(StoredRows.micros(cursor.createdAt))
            arguments.append(cursor.id.description)
        } else if let before {
            // At or before the cursor's time: every job created before it comes after the cursor.
            terms.append("j.created_at < ?")
            arguments.append(before)
        }
        arguments.append(max(0, limit))
        sql = """
            SELECT j.*, \(StoredRows.webhookStatusColumns)
            FROM jobs j LEFT JOIN webhook_events e ON e.job_id = j.id
            \(terms.isEmpty ? "" : "WHERE " + terms.joined(separator: " AND "))
            ORDER BY j.created_at DESC, j.id DESC LIMIT ?
            """
        self.arguments = StatementArguments(arguments)
    }
}
