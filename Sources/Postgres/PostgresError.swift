/// A failure reported by libpq or the server, with the password of the connection string
/// already taken out of its message.
///
/// `sqlState` is the server's five-character code (`23505` for a unique violation, say), or nil
/// when the failure happened on the client side (no connection, a lost socket).
public struct PostgresError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public var sqlState: String?
    /// The constraint the server names, for an integrity violation.
    public var constraint: String?
    /// True when the connection is gone (or never came up), as opposed to a statement refused
    /// on a connection that still works.
    public var isConnectionLost: Bool

    public init(message: String, sqlState: String? = nil, constraint: String? = nil, isConnectionLost: Bool = false) {
        self.message = message
        self.sqlState = sqlState
        self.constraint = constraint
        self.isConnectionLost = isConnectionLost
    }

    public var description: String {
        sqlState.map { "\(message) (SQLSTATE \($0))" } ?? message
    }

    /// `23505`: a unique index refused the row.
    public var isUniqueViolation: Bool { sqlState == "23505" }

    /// Class 40 (serialization failure, deadlock): the transaction may simply be run again.
    public var isRetryableTransactionFailure: Bool { sqlState?.hasPrefix("40") == true }

    /// Classes 22 (data exception) and 23 (integrity constraint): the rows written were refused,
    /// not the database.
    public var isRefusalOfData: Bool { sqlState?.hasPrefix("22") == true || sqlState?.hasPrefix("23") == true }

    /// Class 08 (connection exception) and the shutdown codes of class 57P: the server went away.
    static func isConnectionState(_ state: String?) -> Bool {
        guard let state else { return false }
        return state.hasPrefix("08") || ["57P01", "57P02", "57P03"].contains(state)
    }
}
