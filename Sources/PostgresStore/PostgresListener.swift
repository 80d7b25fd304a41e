import Dispatch
import Foundation
import JobCore
import Logging
import Postgres
import Synchronization

/// This node's ear on the database: one dedicated connection (never from the pool) that runs
/// `LISTEN jobpool`, on a thread of its own, so that the other nodes' commits wake this one
/// at once: new due work, job changes, cancels.
///
/// Nothing may depend on a notification arriving (a NOTIFY sent while this connection was
/// down is lost for good), so the listener also calls ``Handlers/recheck`` about once a second
/// (jittered, so that nodes do not poll in step), and at once after every reconnect. A lost
/// connection (`pg_terminate_backend`, a restarted server) is made again with a growing
/// backoff, from 100 ms up to 5 s.
///
/// ```swift
/// let listener = PostgresListener(target: target, logger: logger, handlers: .init(
///     notified: { notice, connection in … }, // one committed batch of another node (or this one)
///     recheck: { reason, connection in … }) // poll: look at the tables, on the listener's connection
/// listener.start()
/// listener.stop()
/// ```
final class PostgresListener: Sendable {
    /// The one channel: each committed batch sends at most one notification (NOTIFY
    /// serializes commits, so one per batch is the budget), naming what it carries.
    static let channel = "jobpool"

    /// Why the consumers should look at the tables themselves.
    enum Recheck: Sendable, Equatable {
        /// The periodic fallback poll.
        case poll
        /// The connection was made again: notifications may have been missed meanwhile.
        case reconnected
        /// A notification said "look" without saying exactly what (a payload cut to fit).
        case notified
    }

    struct Handlers: Sendable {
        /// A batch's notice, on the listener's thread, with its connection (in no transaction:
        /// it may run queries).
        var notified: @Sendable (PostgresNotice, PostgresConnection) throws -> Void
        /// Look at the tables (on the listener's thread, with its connection, which is in no
        /// transaction and may run queries).
        var recheck: @Sendable (Recheck, PostgresConnection) throws -> Void
    }

    private struct State {
        var stopping = false
        var handlers: Handlers?
        /// Connections made so far (the first is not a reconnect).
        var connections = 0
    }

    private let target: PostgresConnectionString
    private let logger: Logger
    private let pollInterval: Duration
    private let state = Mutex(State())
    private let exited = DispatchGroup()
    /// Cuts a backoff short when stopping.
    private let wake = DispatchSemaphore(value: 0)
    /// The backend the listener's connection talks to, 0 while disconnected (for tests, which
    /// terminate it to prove the reconnect).
    let backendPID = Atomic<Int>(0)

    init(target: PostgresConnectionString, logger: Logger, pollInterval: Duration = .seconds(1)) {
        self.target = target
        self.logger = logger
        self.pollInterval = pollInterval
    }

    /// Sets who is told; before ``start()``.
    func connect(_ handlers: Handlers) {
        state.withLock { $0.handlers = handlers }
    }

    /// How many times the listener has connected (1 after the first connection).
    var connectionCount: Int { state.withLock { $0.connections } }

    func start() {
        exited.enter()
        let thread = Thread { [self] in
            run()
            exited.leave()
        }
        thread.name = "jobpool-postgres-listener"
        thread.start()
    }

    /// Stops the thread (within about 200 ms) and closes its connection.
    func stop() {
        let first = state.withLock { state -> Bool in
            defer { state.stopping = true }
            return !state.stopping
        }
        guard first else { return }
        wake.signal()
        _ = exited.wait(timeout: .now() + (pollInterval * 2 + .seconds(1)).dispatchInterval)
    }

    private var isStopping: Bool { state.withLock { $0.stopping } }

    private func run() {
        var backoff = Duration.milliseconds(100)
        while !isStopping {
            do {
                try listen()
                backoff = .milliseconds(100)
            } catch {
                backendPID.store(0, ordering: .relaxed)
                logger.warning("The notification listener lost its connection; reconnecting", metadata: [
                    "error": "\(target.scrub("\(error)"))", "retry_in": "\(backoff)",
                ])
                _ = wake.wait(timeout: .now() + backoff.dispatchInterval)
                backoff = min(backoff * 2, .seconds(5))
            }
        }
    }

    /// One connection's life: LISTEN, re-check (after a reconnect), then wait for notifications
    /// and poll, until stopping or the connection breaks (thrown).
    private func listen() throws {
        let connection = try PostgresConnection(connectingTo: target, applicationName: "jobpool-listener")
        defer { connection.close() }
        try connection.execute("LISTEN \(Self.channel)")
        let pid = try connection.query("SELECT pg_backend_pid() AS pid").first?.int("pid") ?? 0
        backendPID.store(pid, ordering: .relaxed)
        let (handlers, count) = state.withLock { state -> (Handlers?, Int) in
            state.connections += 1
            return (state.handlers, state.connections)
        }
        // Whatever was sent while no connection listened is lost: look at the tables instead.
        if count > 1 {
            logger.info("The notification listener reconnected", metadata: ["connections": "\(count)"])
            try handlers?.recheck(.reconnected, connection)
        }
        var nextPoll = ContinuousClock.now + pollInterval * Double.random(in: 0.8...1.2)
        while !isStopping {
            // In slices, so that a stop is noticed within 200 ms.
            let notifications = try connection.waitForNotifications(timeout: min(.milliseconds(200), max(.zero, nextPoll - .now)))
            for notification in notifications where notification.channel == Self.channel {
                let notice = PostgresNotice(payload: notification.payload)
                try handlers?.notified(notice, connection)
                if notice.isTruncated { try handlers?.recheck(.notified, connection) }
            }
            if ContinuousClock.now >= nextPoll {
                try handlers?.recheck(.poll, connection)
                nextPoll = ContinuousClock.now + pollInterval * Double.random(in: 0.8...1.2)
            }
        }
    }
}

/// What one committed batch tells the other nodes, in one notification's payload: whether it
/// made due work, whether it changed jobs (so that event tailers read), and which jobs it asked
/// to cancel. Job IDs only, never job bodies: a payload is capped at 8000 bytes, and past
/// ``maxPayloadBytes`` the IDs are left out and the notice says "cancel:*" (look at every
/// cancel request).
struct PostgresNotice: Sendable, Equatable {
    var work = false
    var events = false
    var cancels: [String] = []
    /// The cancel IDs did not fit: the listener re-checks every open cancel request.
    var isTruncated = false

    /// Stays under PostgreSQL's 8000 bytes with room to spare.
    static let maxPayloadBytes = 7800

    init(work: Bool = false, events: Bool = false, cancels: [String] = []) {
        self.work = work
        self.events = events
        self.cancels = cancels
    }

    init(payload: String) {
        for token in payload.split(separator: " ") {
            switch token {
            case "work": work = true
            case "events": events = true
            case "cancel:*": isTruncated = true
            default:
                if token.hasPrefix("cancel:") { cancels += token.dropFirst("cancel:".count).split(separator: ",").map(String.init) }
            }
        }
    }

    var isEmpty: Bool { !work && !events && cancels.isEmpty && !isTruncated }

    /// The payload: `work events cancel:id,id`, each part only when it applies.
    var payload: String {
        var parts: [String] = []
        if work { parts.append("work") }
        if events { parts.append("events") }
        if isTruncated {
            parts.append("cancel:*")
        } else if !cancels.isEmpty {
            parts.append("cancel:" + cancels.joined(separator: ","))
        }
        let text = parts.joined(separator: " ")
        guard text.utf8.count > Self.maxPayloadBytes else { return text }
        var cut = self
        cut.cancels = []
        cut.isTruncated = true
        return cut.payload
    }
}

extension PostgresWorkQueue {
    /// Another node committed due work: look for it now rather than at the next poll.
    func wakeForNewWork() { workerFreed() }
}
