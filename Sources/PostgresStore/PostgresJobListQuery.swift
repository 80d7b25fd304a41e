import Foundation
import JobCore
import Postgres

/// The SQL for one page of a job list: newest first, strictly after the cursor, so that a page
/// costs an index seek and `limit` rows however many jobs are stored. PostgreSQL's planner
/// picks the index (owner, status, kind or `(created_at, id)`) from its statistics; the
/// created-at range and the cursor bound that index's `(created_at, id)` tail. Of an upper
/// bound from `createdBefore` and one from the cursor only the tighter is written, as in the
/// SQLite store.
///
/// The status, kind and creation-time indexes leave running jobs out (schema 8 and 9), so a
/// list not filtered by status reads two parts, each in order, and merges them: the jobs that
/// are not running, through those indexes, and the running ones (never more than the
/// cluster's workers) through `jobs_running_by_node`.
struct PostgresJobListQuery {
    var sql: String
    var parameters: [(any PostgresBindable)?]

    init(filter: JobFilter, limit: Int, after cursor: JobCursor?) {
        var terms: [String] = []
        var parameters: [(any PostgresBindable)?] = []
        func placeholder(_ value: any PostgresBindable, _ cast: String = "") -> String {
            parameters.append(value)
            return "$\(parameters.count)\(cast)"
        }
        if let owner = filter.owner { terms.append("j.owner = \(placeholder(owner))") }
        // A literal, not a parameter: `jobs_by_status` leaves running jobs out, and a generic
        // plan (the list is a prepared statement) could not prove `status <> 'running'` from
        // `status = $1`, so it would read the table by creation time instead. The value is one
        // of `JobState`'s raw values, plain lowercase words.
        if let status = filter.status { terms.append("j.status = '\(status.rawValue)'") }
        if let kind = filter.kind { terms.append("j.kind = \(placeholder(kind))") }
        if let from = filter.createdFrom {
            terms.append("j.created_at >= \(placeholder(StoredTime.firstMicros(notBefore: from), "::bigint"))")
        }
        let before = filter.createdBefore.map(StoredTime.firstMicros(notBefore:))
        if let cursor, before.map({ $0 > StoredTime.micros(cursor.createdAt) }) ?? true {
            let createdAt = placeholder(StoredTime.micros(cursor.createdAt), "::bigint")
            terms.append("(j.created_at, j.id) < (\(createdAt), \(placeholder(cursor.id.description, "::uuid")))")
        } else if let before {
            terms.append("j.created_at < \(placeholder(before, "::bigint"))")
        }
        let limit = placeholder(max(0, limit), "::int")
        let order = "ORDER BY j.created_at DESC, j.id DESC LIMIT \(limit)"
        func filtered(_ terms: [String]) -> String { terms.isEmpty ? "" : "WHERE " + terms.joined(separator: " AND ") }
        var rows = "jobs j", conditions = terms
        if filter.status == nil {
            // Each part names its status condition as a literal, for the generic plan's sake.
            let parts = ["j.status <> 'running'", "j.status = 'running'"].map { "(SELECT * FROM jobs j \(filtered(terms + [$0])) \(order))" }
            rows = "(\(parts.joined(separator: " UNION ALL "))) j"
            conditions = []
        }
        sql = """
            SELECT j.*, \(PostgresRowDecoding.webhookStatusColumns)
            FROM \(rows) LEFT JOIN webhook_events e ON e.job_id = j.id
            \(filtered(conditions))
            \(order)
            """
        self.parameters = parameters
    }
}
