import Dispatch
import Synchronization

/// A few connections shared by blocking callers on their own threads (the store's readers),
/// opened on first use and kept idle between uses. Never use it on an event loop: taking a
/// connection waits while all are busy, and every query blocks.
///
/// A connection that libpq found broken is closed when it comes back instead of being kept,
/// so that a database restart costs each connection one failed call, not every call after it.
///
/// ```swift
/// let pool = PostgresConnectionPool(target: target, size: 4)
/// let count = try pool.withConnection { try $0.query("SELECT count(*) AS n FROM jobs")[0].int("n") }
/// ```
public final class PostgresConnectionPool: Sendable {
    private struct State {
        var idle: [PostgresConnection] = []
        var isClosed = false
    }

    public let target: PostgresConnectionString
    /// The most connections open at once; more callers wait.
    public let size: Int
    private let settings: [Setting]
    private let acquireTimeout: Duration
    private let state = Mutex(State())
    /// One permit per connection the pool may have in use.
    private let permits: DispatchSemaphore

    private struct Setting: Sendable {
        var name: String
        var value: String
    }

    /// - Parameters:
    ///   - settings: session settings for every connection (see ``PostgresConnection/init(connectingTo:applicationName:connectTimeoutSeconds:settings:)``).
    ///   - acquireTimeout: how long a caller waits for a busy pool before giving up with an error.
    public init(target: PostgresConnectionString, size: Int, settings: [(name: String, value: String)] = [],
                acquireTimeout: Duration = .seconds(10)) {
        self.target = target
        self.size = max(1, size)
        self.settings = settings.map { Setting(name: $0.name, value: $0.value) }
        self.acquireTimeout = acquireTimeout
        permits = DispatchSemaphore(value: max(1, size))
    }

    /// Runs `body` with a connection of the pool. With `retryIfStale`, a call that failed because
    /// an idle connection had been lost (the server restarted meanwhile) runs once more on a new
    /// connection: pass it only for a body that may safely run twice (reads).
    public func withConnection<Value>(retryIfStale: Bool = false, _ body: (PostgresConnection) throws -> Value) throws -> Value {
        let deadline = DispatchTime.now() + .milliseconds(Int(acquireTimeout / .milliseconds(1)))
        guard permits.wait(timeout: deadline) == .success else {
            throw PostgresError(message: "all \(size) connections to \(target.redacted) stayed busy for \(acquireTimeout)")
        }
        defer { permits.signal() }
        var (connection, wasIdle) = try take()
        do {
            let value = try body(connection)
            give(back: connection)
            return value
        } catch let error as PostgresError where error.isConnectionLost && wasIdle && retryIfStale {
            connection.close()
            (connection, wasIdle) = try take(fresh: true)
        } catch {
            give(back: connection)
            throw error
        }
        defer { give(back: connection) }
        return try body(connection)
    }

    /// Closes the idle connections; connections in use are closed as they come back.
    public func close() {
        let idle = state.withLock { state in
            state.isClosed = true
            defer { state.idle = [] }
            return state.idle
        }
        for connection in idle { connection.close() }
    }

    /// An idle connection, or a new one. Returns whether it was idle (and so may have gone stale).
    private func take(fresh: Bool = false) throws -> (PostgresConnection, Bool) {
        let idle = state.withLock { state -> PostgresConnection?? in
            guard !state.isClosed else { return .none }
            return .some(fresh ? nil : state.idle.popLast())
        }
        guard let idle else { throw PostgresError(message: "the connection pool for \(target.redacted) is closed") }
        if let idle { return (idle, true) }
        return (try PostgresConnection(connectingTo: target, settings: settings.map { ($0.name, $0.value) }), false)
    }

    private func give(back connection: PostgresConnection) {
        let keep = !connection.isBroken && state.withLock { state in
            guard !state.isClosed else { return false }
            state.idle.append(connection)
            return true
        }
        if !keep { connection.close() }
    }
}
