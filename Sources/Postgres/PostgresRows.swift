/// The rows a statement returned, copied out of libpq's result (which is freed at once), with
/// typed access by column name.
///
/// ```swift
/// let rows = try connection.query("SELECT id, attempt FROM jobs WHERE status = $1", ["queued"])
/// for row in rows { print(try row.string("id"), try row.int("attempt")) }
/// ```
public struct PostgresRows: Sendable, RandomAccessCollection {
    /// Column names in order.
    public let columns: [String]
    /// Rows the statement changed (`UPDATE`, `DELETE`, `INSERT`), from the command tag.
    public let affectedRows: Int
    private let columnIndex: [String: Int]
    /// Row-major values; nil is SQL NULL.
    private let values: [String?]

    init(columns: [String], values: [String?], affectedRows: Int) {
        self.columns = columns
        self.values = values
        self.affectedRows = affectedRows
        var index: [String: Int] = [:]
        for (position, name) in columns.enumerated() where index[name] == nil { index[name] = position }
        columnIndex = index
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { columns.isEmpty ? 0 : values.count / columns.count }

    public subscript(position: Int) -> PostgresRow {
        PostgresRow(rows: self, offset: position * columns.count)
    }

    fileprivate func value(at offset: Int, column: String) throws(PostgresError) -> String? {
        guard let position = columnIndex[column] else {
            throw PostgresError(message: "the result has no column \(column) (it has \(columns.joined(separator: ", ")))")
        }
        return values[offset + position]
    }
}

/// One row of ``PostgresRows``. Each accessor throws if the column is missing, or if a
/// non-optional one is NULL or not of the asked type.
public struct PostgresRow: Sendable {
    fileprivate let rows: PostgresRows
    fileprivate let offset: Int

    public func optionalString(_ column: String) throws(PostgresError) -> String? {
        try rows.value(at: offset, column: column)
    }

    public func string(_ column: String) throws(PostgresError) -> String {
        guard let text = try optionalString(column) else { throw Self.null(column) }
        return text
    }

    public func optionalInt64(_ column: String) throws(PostgresError) -> Int64? {
        guard let text = try optionalString(column) else { return nil }
        guard let value = Int64(text) else { throw Self.malformed(column, text, "an integer") }
        return value
    }

    public func int64(_ column: String) throws(PostgresError) -> Int64 {
        guard let value = try optionalInt64(column) else { throw Self.null(column) }
        return value
    }

    public func optionalInt(_ column: String) throws(PostgresError) -> Int? {
        try optionalInt64(column).map { Int($0) }
    }

    public func int(_ column: String) throws(PostgresError) -> Int {
        Int(try int64(column))
    }

    public func optionalDouble(_ column: String) throws(PostgresError) -> Double? {
        guard let text = try optionalString(column) else { return nil }
        guard let value = Double(text) ?? Self.specialDouble(text) else { throw Self.malformed(column, text, "a number") }
        return value
    }

    /// A `boolean` column, sent by the server as `t` or `f`.
    public func bool(_ column: String) throws(PostgresError) -> Bool {
        switch try string(column) {
        case "t", "true": return true
        case "f", "false": return false
        case let text: throw Self.malformed(column, text, "a boolean")
        }
    }

    /// A `bytea` column, sent by the server in hex form.
    public func optionalBytes(_ column: String) throws(PostgresError) -> [UInt8]? {
        guard let text = try optionalString(column) else { return nil }
        guard let bytes = PostgresBytes.decode(text) else { throw Self.malformed(column, String(text.prefix(20)), "bytea in hex form") }
        return bytes
    }

    public func bytes(_ column: String) throws(PostgresError) -> [UInt8] {
        guard let bytes = try optionalBytes(column) else { throw Self.null(column) }
        return bytes
    }

    private static func specialDouble(_ text: String) -> Double? {
        switch text {
        case "Infinity": return .infinity
        case "-Infinity": return -.infinity
        case "NaN": return .nan
        default: return nil
        }
    }

    private static func null(_ column: String) -> PostgresError {
        PostgresError(message: "column \(column) is NULL where a value was expected")
    }

    private static func malformed(_ column: String, _ text: String, _ expected: String) -> PostgresError {
        PostgresError(message: "column \(column) holds \(text.prefix(40)), not \(expected)")
    }
}
