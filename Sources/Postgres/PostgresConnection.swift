import CLibPQ
import Foundation
import Glibc
import Synchronization

/// One libpq connection, used by one thread at a time (its own lock makes sure of it).
///
/// Every call blocks until the server answers: use it from a store's own threads, never on
/// the event loop. Parameters travel as text (see ``PostgresBindable``); results are copied
/// into ``PostgresRows`` and libpq's result is freed before the call returns. Errors carry the
/// SQLSTATE and never the connection string's password.
///
/// ```swift
/// let connection = try PostgresConnection(connectingTo: PostgresConnectionString(url))
/// try connection.transaction {
///     try connection.execute("UPDATE jobs SET status = $1 WHERE id = $2::uuid", ["running", id])
/// }
/// ```
public final class PostgresConnection: Sendable {
    /// Where this connection goes; its description is redacted.
    public let target: PostgresConnectionString
    /// libpq's `PGconn`, nil once closed, and the statements prepared on it. The lock is what
    /// makes one connection safe to hand from thread to thread: libpq allows one caller at a
    /// time per connection.
    private let handle: Mutex<Session>

    private struct Session {
        var connection: OpaquePointer?
        /// The server-side name of each statement prepared on this connection, by its SQL.
        var prepared: [String: String] = [:]
    }

    /// Statements with more parameters than this are not prepared: they are the multi-row
    /// inserts, whose SQL varies with the number of rows and would fill the cache.
    static let preparedParameterLimit = 64
    /// The most statements prepared on one connection; past it, statements run unprepared.
    static let preparedStatementLimit = 256

    /// Connects, then applies `settings` (`set_config(name, value)` for the session, such as
    /// `TimeZone`). `application_name` and `connect_timeout` are defaults the string may override.
    public init(connectingTo target: PostgresConnectionString, applicationName: String = "jobpool",
                connectTimeoutSeconds: Int = 5, settings: [(name: String, value: String)] = []) throws(PostgresError) {
        self.target = target
        // Keywords are read in order and a later one wins, so the defaults come before the
        // connection string (expanded from `dbname`), which may override them.
        // Both arrays end with a null pointer, as libpq expects.
        let keywords: [String?] = ["application_name", "connect_timeout", "dbname", nil]
        let values: [String?] = [applicationName, String(connectTimeoutSeconds), target.text, nil]
        let connection = Self.withCStrings(keywords) { keywordPointers in
            Self.withCStrings(values) { valuePointers in
                PQconnectdbParams(keywordPointers.baseAddress, valuePointers.baseAddress, 1)
            }
        }
        guard let connection, PQstatus(connection) == CONNECTION_OK else {
            let reason = connection.map { String(cString: PQerrorMessage($0)) } ?? "out of memory"
            if let connection { PQfinish(connection) }
            throw PostgresError(message: "cannot connect to \(target.redacted): \(target.scrub(Self.trimmed(reason)))",
                                isConnectionLost: true)
        }
        // Notices (such as "relation already exists, skipping") would go to stderr.
        PQsetNoticeProcessor(connection, { _, _ in }, nil)
        handle = Mutex(Session(connection: connection))
        for setting in settings {
            try execute("SELECT set_config($1, $2, false)", [setting.name, setting.value])
        }
    }

    deinit { close() }

    /// Closes the connection; later calls fail.
    public func close() {
        handle.withLock { session in
            if let open = session.connection { PQfinish(open) }
            session.connection = nil
            session.prepared = [:]
        }
    }

    /// True when the connection is closed or libpq has found it broken; a pool drops it.
    public var isBroken: Bool {
        handle.withLock { session in session.connection.map { PQstatus($0) != CONNECTION_OK } ?? true }
    }

    /// Runs one statement and returns its rows. The statement is prepared on the server the
    /// first time this connection runs it, and only executed after that: planning a statement
    /// of several `WITH` clauses cost more than running it.
    public func query(_ sql: String, _ parameters: [(any PostgresBindable)?] = []) throws(PostgresError) -> PostgresRows {
        let texts = parameters.map { $0?.postgresText }
        return try handle.withLock { session throws(PostgresError) -> PostgresRows in
            guard let connection = session.connection else { throw Self.closedError }
            let name = try prepare(sql, parameterCount: texts.count, in: &session)
            let result = Self.withCStrings(texts) { pointers in
                if let name {
                    PQexecPrepared(connection, name, Int32(pointers.count), pointers.baseAddress, nil, nil, 0)
                } else {
                    PQexecParams(connection, sql, Int32(pointers.count), nil, pointers.baseAddress, nil, nil, 0)
                }
            }
            defer { PQclear(result) }
            return try rows(of: result, on: connection)
        }
    }

    /// Runs one statement in a transaction of its own, as ``query(_:_:)`` does, but hands its
    /// rows to `rowsReady` as soon as the statement has run, while the server commits it: what
    /// the caller does with the rows overlaps the commit's wait for the WAL flush. Returns once
    /// the commit is durable. Throws if the statement failed (`rowsReady` is not called), or
    /// if the commit did (after `rowsReady`: the caller cannot tell whether the statement's
    /// changes were committed, so they must be fenced as if they might be, or might not).
    ///
    /// One round trip, as for ``query(_:_:)``: in libpq's pipeline mode the statement, a flush
    /// request (so that the server sends the rows before committing) and the sync point that
    /// ends the implicit transaction go out together. `rowsReady` runs on the calling thread,
    /// with this connection held: it must not use the connection.
    public func queryOverlappingCommit(_ sql: String, _ parameters: [(any PostgresBindable)?] = [],
                                       rowsReady: (PostgresRows) -> Void) throws(PostgresError) {
        let texts = parameters.map { $0?.postgresText }
        try handle.withLock { session throws(PostgresError) in
            guard let connection = session.connection else { throw Self.closedError }
            let name = try prepare(sql, parameterCount: texts.count, in: &session)
            guard PQenterPipelineMode(connection) == 1 else { throw lastFailure(on: connection) }
            var failure: PostgresError?
            do throws(PostgresError) {
                let sent = Self.withCStrings(texts) { pointers in
                    if let name {
                        PQsendQueryPrepared(connection, name, Int32(pointers.count), pointers.baseAddress, nil, nil, 0)
                    } else {
                        PQsendQueryParams(connection, sql, Int32(pointers.count), nil, pointers.baseAddress, nil, nil, 0)
                    }
                }
                guard sent == 1, PQsendFlushRequest(connection) == 1, PQpipelineSync(connection) == 1 else {
                    throw lastFailure(on: connection)
                }
                // The statement's result, then the null that ends its results. (Each loop is
                // bounded: a lost connection reports once and then has no results.)
                let statement = PQgetResult(connection)
                let outcome = Result { () throws(PostgresError) in try rows(of: statement, on: connection) }
                PQclear(statement)
                for _ in 0..<8 {
                    guard let extra = PQgetResult(connection) else { break }
                    PQclear(extra)
                }
                if case .success(let rows) = outcome { rowsReady(rows) }
                // The sync point's result, once the implicit transaction has committed (or rolled
                // back after a failed statement); an error before it is the commit's.
                var commitFailure: PostgresError?
                var synced = false
                for _ in 0..<8 {
                    // An error result is followed by the null that ends it, then the sync point.
                    guard let result = PQgetResult(connection) else {
                        if PQstatus(connection) != CONNECTION_OK { break } else { continue }
                    }
                    defer { PQclear(result) }
                    if PQresultStatus(result) == PGRES_PIPELINE_SYNC { synced = true; break }
                    do throws(PostgresError) {
                        _ = try rows(of: result, on: connection)
                    } catch {
                        commitFailure = commitFailure ?? error
                    }
                }
                _ = try outcome.get()
                if let commitFailure { throw commitFailure }
                guard synced else { throw lastFailure(on: connection) }
            } catch {
                failure = error
            }
            if PQexitPipelineMode(connection) != 1 {
                // Results are still unread (a send that failed half-way, a sync point that never
                // came): the connection is out of step for good. Closed, it is replaced.
                PQfinish(connection)
                session.connection = nil
            }
            if let failure { throw failure }
        }
    }

    /// The name `sql` is prepared under on this connection, preparing it now if it is new; nil
    /// for a statement left unprepared (see ``preparedParameterLimit``).
    private func prepare(_ sql: String, parameterCount: Int, in session: inout Session) throws(PostgresError) -> String? {
        if let name = session.prepared[sql] { return name }
        guard let connection = session.connection, parameterCount <= Self.preparedParameterLimit,
              session.prepared.count < Self.preparedStatementLimit else { return nil }
        let name = "jobpool_\(session.prepared.count + 1)"
        let result = PQprepare(connection, name, sql, Int32(parameterCount), nil)
        defer { PQclear(result) }
        _ = try rows(of: result, on: connection)
        session.prepared[sql] = name
        return name
    }

    /// Runs one statement; returns how many rows it changed.
    @discardableResult
    public func execute(_ sql: String, _ parameters: [(any PostgresBindable)?] = []) throws(PostgresError) -> Int {
        try query(sql, parameters).affectedRows
    }

    /// Runs several `;`-separated statements without parameters (a migration script) in the
    /// simple query protocol: one round trip, one implicit transaction unless the script has its own.
    public func executeScript(_ sql: String) throws(PostgresError) {
        try handle.withLock { session throws(PostgresError) in
            guard let connection = session.connection else { throw Self.closedError }
            let result = PQexec(connection, sql)
            defer { PQclear(result) }
            _ = try rows(of: result, on: connection)
        }
    }

    /// Runs `body` between `BEGIN` and `COMMIT`; a throw rolls back and is rethrown.
    public func transaction<Value>(_ body: () throws -> Value) throws -> Value {
        try execute("BEGIN")
        do {
            let value = try body()
            try execute("COMMIT")
            return value
        } catch {
            if !isBroken { _ = try? execute("ROLLBACK") }
            throw error
        }
    }

    /// Runs `body` under `SAVEPOINT name`: a throw rolls back to the savepoint (the enclosing
    /// transaction goes on) and is rethrown; otherwise the savepoint is released.
    public func savepoint<Value>(_ name: String, _ body: () throws -> Value) throws -> Value {
        try execute("SAVEPOINT \(name)")
        do {
            let value = try body()
            try execute("RELEASE SAVEPOINT \(name)")
            return value
        } catch {
            if !isBroken { try execute("ROLLBACK TO SAVEPOINT \(name)") }
            throw error
        }
    }

    // MARK: - The C boundary

    private static let closedError = PostgresError(message: "the connection is closed", isConnectionLost: true)

    /// Copies a result's rows out, or turns its error into a ``PostgresError``.
    private func rows(of result: OpaquePointer?, on connection: OpaquePointer) throws(PostgresError) -> PostgresRows {
        guard let result else { throw lastFailure(on: connection) }
        let status = PQresultStatus(result)
        guard status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK || status == PGRES_EMPTY_QUERY else {
            let state = PQresultErrorField(result, cpq_diag_sqlstate).map { String(cString: $0) }
            let message = PQresultErrorField(result, cpq_diag_message_primary).map { String(cString: $0) }
                ?? String(cString: PQresultErrorMessage(result))
            var error = failure(connection: connection, state: state, message: message)
            error.constraint = PQresultErrorField(result, cpq_diag_constraint_name).map { String(cString: $0) }
            throw error
        }
        let fieldCount = Int(PQnfields(result))
        let rowCount = Int(PQntuples(result))
        let columns = (0..<fieldCount).map { String(cString: PQfname(result, Int32($0))) }
        var values: [String?] = []
        values.reserveCapacity(fieldCount * rowCount)
        for row in 0..<Int32(rowCount) {
            for field in 0..<Int32(fieldCount) {
                values.append(PQgetisnull(result, row, field) == 1 ? nil : String(cString: PQgetvalue(result, row, field)))
            }
        }
        let affected = Int(String(cString: PQcmdTuples(result))) ?? 0
        return PostgresRows(columns: columns, values: values, affectedRows: affected)
    }

    /// The connection's last error, for a call that returned no result.
    private func lastFailure(on connection: OpaquePointer) -> PostgresError {
        failure(connection: connection, state: nil, message: String(cString: PQerrorMessage(connection)))
    }

    private func failure(connection: OpaquePointer, state: String?, message: String) -> PostgresError {
        let lost = PQstatus(connection) != CONNECTION_OK || PostgresError.isConnectionState(state)
        return PostgresError(message: target.scrub(Self.trimmed(message)), sqlState: state, isConnectionLost: lost)
    }

    /// libpq's message on one line: its lines trimmed (it indents continuations with a tab),
    /// and a line it repeats (a lost connection is reported twice) kept once.
    static func trimmed(_ message: String) -> String {
        var lines: [String] = []
        for line in message.split(whereSeparator: \.isNewline) {
            let text = line.trimmingCharacters(in: .whitespaces)
            if !text.isEmpty, !lines.contains(text) { lines.append(text) }
        }
        return lines.joined(separator: " ")
    }

    /// Calls `body` with NUL-terminated copies of `strings` (nil stays a null pointer, SQL NULL),
    /// freed when it returns.
    static func withCStrings<Result>(_ strings: [String?], _ body: (UnsafeBufferPointer<UnsafePointer<CChar>?>) -> Result) -> Result {
        let copies: [UnsafeMutablePointer<CChar>?] = strings.map { $0.flatMap { strdup($0) } }
        defer { for copy in copies { free(copy) } }
        let pointers = copies.map { $0.map { UnsafePointer($0) } }
        return pointers.withUnsafeBufferPointer(body)
    }

    /// Runs `body` with libpq's `PGconn`: for the notification calls in this target only.
    func withHandle<Result>(_ body: (OpaquePointer) throws(PostgresError) -> Result) throws(PostgresError) -> Result where Result: Sendable {
        try handle.withLock { session throws(PostgresError) -> Result in
            guard let connection = session.connection else { throw Self.closedError }
            return try body(connection)
        }
    }
}
