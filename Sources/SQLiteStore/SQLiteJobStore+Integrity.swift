import Foundation
import GRDB
import JobCore

/// Where the file's integrity check stands.
enum IntegrityCheck: Sendable {
    /// The store is open; the check has not begun.
    case waiting
    /// `PRAGMA quick_check` is running on this connection of its own.
    case running(DatabaseQueue)
    /// The file passed.
    case passed
    /// The file is damaged: submissions are refused and readiness fails from now on.
    case failed(StoreError)
    /// The check did not finish (the store closed first, or it could not run); said in the log.
    case abandoned
}

/// The integrity check runs after the start, not before it.
///
/// `PRAGMA quick_check` reads every page: about 0.8 s for a file of a million jobs on these
/// machines, and it grows with the file. Before this issue it ran before `listening`; a start
/// must now take the same time whatever the history. What a cheaper check at start still
/// catches: a file that is not a database, or whose header or schema is damaged, fails to open
/// (SQLite reads both), and that stops the start as before. Damage deeper in the file is found
/// here a second or so later, on its own thread and read-only connection (so writes and
/// queries go on, and a close can interrupt it alone): it is logged as critical, readiness turns false, and new submissions are refused with
/// the reason (nothing accepted is dropped; state changes of running jobs are still written), so
/// that an operator restores a backup rather than piling new work onto a damaged file.
extension SQLiteJobStore {
    /// Why the store refuses new jobs, once the check has found damage.
    var integrityFailure: StoreError? {
        integrity.withLock { state in
            if case .failed(let failure) = state { return failure }
            return nil
        }
    }

    /// Runs the check once, on the calling thread (the store's check thread).
    func checkIntegrity() {
        let outcome: IntegrityCheck
        let started = ContinuousClock.now
        do {
            var configuration = Configuration()
            configuration.readonly = true
            let connection = try DatabaseQueue(path: path, configuration: configuration)
            defer { try? connection.close() }
            let begins = integrity.withLock { state -> Bool in
                guard case .waiting = state else { return false }
                state = .running(connection)
                return true
            }
            guard begins else { return }
            let findings = try connection.read { db in try String.fetchAll(db, sql: "PRAGMA quick_check") }
            if findings == ["ok"] {
                outcome = .passed
                logger.debug("The job store passed its integrity check", metadata: ["duration": "\(ContinuousClock.now - started)"])
            } else {
                outcome = .failed(StoreError("\(path) is damaged (SQLite quick_check: \(findings.joined(separator: "\n").split(separator: "\n").prefix(5).joined(separator: "; "))). New jobs are refused. Stop jobpool and restore the file from a backup."))
            }
        } catch let error as DatabaseError where [.SQLITE_CORRUPT, .SQLITE_NOTADB].contains(error.resultCode) {
            outcome = .failed(StoreError("\(path) is damaged (\(Self.describe(error, path: path))). New jobs are refused. Stop jobpool and restore the file from a backup."))
        } catch {
            outcome = .abandoned
            if !queue.isClosing {
                logger.error("Could not check the job store's integrity", metadata: ["error": "\(Self.describe(error, path: path))"])
            }
        }
        let recorded = integrity.withLock { state -> Bool in
            guard case .running = state else { return false } // closed meanwhile
            state = outcome
            return true
        }
        if recorded, case .failed(let failure) = outcome {
            logger.critical("The job store failed its integrity check", metadata: ["error": "\(failure.message)"])
        }
    }

    /// Called by `close()`: a check still running is interrupted (its connection only), so that
    /// closing does not wait for it; one not yet begun never begins.
    func stopIntegrityCheck() {
        let running = integrity.withLock { state -> DatabaseQueue? in
            switch state {
            case .waiting:
                state = .abandoned
                return nil
            case .running(let connection):
                state = .abandoned
                return connection
            case .passed, .failed, .abandoned:
                return nil
            }
        }
        running?.interrupt()
    }
}
