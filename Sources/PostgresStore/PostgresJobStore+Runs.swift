import Foundation
import JobCore
import Postgres

/// Starts and finishes in one statement each, however many there are: a busy pool reports them
/// in bursts, and one `UPDATE … FROM unnest(…)` of a hundred jobs costs about what one job's
/// update does (the round trip and the statement's overhead dominate; measured in a debug
/// build here, 130 µs for a start and 230 µs for a finish, one at a time).
///
/// Only consecutive changes of one kind, for distinct jobs, share a statement, so the order in
/// which changes were applied is kept wherever it can matter: two changes of one job are never
/// merged, nor moved past a change of another kind.
extension PostgresJobStore {
    /// Changes that are written together.
    struct AttemptRun {
        private(set) var changes: [StoreChange] = []
        private var jobs = Set<JobID>()

        /// Adds `change` if it can join the run; false if the run must be written first.
        mutating func add(_ change: StoreChange) -> Bool {
            guard let id = Self.jobID(of: change), Self.sameKind(changes.first, change), !jobs.contains(id) else { return false }
            jobs.insert(id)
            changes.append(change)
            return true
        }

        /// The job of a change that can be written in a run (a start or a finish).
        static func jobID(of change: StoreChange) -> JobID? {
            switch change {
            case .started(let key, _, _), .finished(let key, _, _, _, _, _, _, _): return key.id
            default: return nil
            }
        }

        private static func sameKind(_ first: StoreChange?, _ change: StoreChange) -> Bool {
            switch (first, change) {
            case (nil, _), (.started?, .started), (.finished?, .finished): return true
            default: return false
            }
        }
    }

    /// Writes a run of starts or of finishes in one statement.
    func write(_ run: AttemptRun, on connection: PostgresConnection) throws {
        guard let first = run.changes.first else { return }
        if case .started = first { try writeStarts(run.changes, on: connection) } else { try writeFinishes(run.changes, on: connection) }
    }

    /// Each start is fenced by its attempt: it never moves a job back from a later attempt.
    private func writeStarts(_ changes: [StoreChange], on connection: PostgresConnection) throws {
        var ids: [String?] = [], attempts: [String?] = [], times: [String?] = []
        for case .started(let key, let attempt, let at) in changes {
            ids.append(key.id.description)
            attempts.append(String(attempt))
            times.append(String(StoredTime.micros(at)))
        }
        try connection.execute("""
            UPDATE jobs j SET status = 'running', started_at = v.started_at, attempt = v.attempt, next_attempt_at = NULL
            FROM unnest($1::uuid[], $2::int[], $3::bigint[]) AS v(id, attempt, started_at)
            WHERE j.id = v.id AND j.attempt <= v.attempt AND j.finished_at IS NULL
            """, [PostgresArray(ids), PostgresArray(attempts), PostgresArray(times)])
    }

    /// Each finish is fenced by its attempt: a stale attempt changes nothing and writes no
    /// attempt row and no webhook event (the event is the outbox row of the final state).
    private func writeFinishes(_ changes: [StoreChange], on connection: PostgresConnection) throws {
        var columns = Array(repeating: [String?](), count: 12)
        for case .finished(let key, let attempt, let startedAt, let status, let result, let error, let at, let event) in changes {
            let row: [String?] = [
                key.id.description, String(attempt), status.rawValue, result.map(PostgresRowDecoding.json), error?.code,
                error?.message, error?.status.map { String($0) }, String(StoredTime.micros(at)),
                startedAt.map { String(StoredTime.micros($0)) }, event?.webhookID, event?.url,
                event.map { PostgresBytes($0.body).postgresText },
            ]
            for (column, value) in row.enumerated() { columns[column].append(value) }
        }
        try connection.execute("""
            WITH v AS (
                SELECT * FROM unnest($1::uuid[], $2::int[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int[],
                                     $8::bigint[], $9::bigint[], $10::text[], $11::text[], $12::bytea[])
                    AS v(id, attempt, status, result, error_code, error_message, error_status, finished_at, started_at,
                         webhook_id, url, body)),
            finished AS (
                UPDATE jobs j SET status = v.status, result = v.result, error_code = v.error_code, error_message = v.error_message,
                                  error_status = v.error_status, finished_at = v.finished_at,
                                  started_at = coalesce(v.started_at, j.started_at), next_attempt_at = NULL
                FROM v WHERE j.id = v.id AND j.attempt = v.attempt AND j.finished_at IS NULL
                RETURNING j.id, v.attempt, v.status, v.error_code, v.finished_at, v.started_at, v.webhook_id, v.url, v.body),
            attempts AS (
                INSERT INTO job_attempts (job_id, attempt, started_at, finished_at, outcome, error_code)
                SELECT id, attempt, started_at, finished_at, status, error_code FROM finished WHERE started_at IS NOT NULL
                ON CONFLICT (job_id, attempt) DO UPDATE SET started_at = excluded.started_at,
                    finished_at = excluded.finished_at, outcome = excluded.outcome, error_code = excluded.error_code)
            INSERT INTO webhook_events (job_id, webhook_id, url, body, state, round_start, next_attempt_at)
            SELECT id, webhook_id, url, body, 'pending', 0, NULL FROM finished WHERE webhook_id IS NOT NULL
            """, columns.map { PostgresArray($0) as (any PostgresBindable)? })
    }
}
