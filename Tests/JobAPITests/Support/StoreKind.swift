import Foundation
import JobpoolApp
import PostgresTestSupport
import StoreTestSupport
import Testing

/// The stores a suite runs against, through the real server: every query and write behaves the
/// same on each.
enum StoreKind: String, CaseIterable, Sendable, CustomTestStringConvertibleLike {
    case memory, sqlite, postgres

    /// The store the API tests run against by default: JOBPOOL_TEST_STORE (`memory`, `sqlite`
    /// or `postgres`), memory when unset.
    static let underTest: StoreKind = {
        guard let name = ProcessInfo.processInfo.environment["JOBPOOL_TEST_STORE"] else { return .memory }
        guard let kind = StoreKind(rawValue: name) else { fatalError("JOBPOOL_TEST_STORE must be memory, sqlite or postgres, not \(name)") }
        return kind
    }()

    /// The kinds a test that names each store runs with: PostgreSQL only where its programs
    /// are installed (always under CI, where a missing install then fails the test).
    static let available: [StoreKind] = allCases.filter { $0 != .postgres || PostgresTestCluster.isAvailable }

    /// The stores that outlive a server, as ``available`` has them.
    static let durable = available.filter { $0 != .memory }

    /// Points `configuration` at a fresh store of this kind.
    func apply(to configuration: inout ServerConfiguration) {
        configuration.store = makeStore()
    }

    /// A fresh store of this kind: SQLite in its own temporary folder, PostgreSQL in a database
    /// of its own in the test process's private cluster. Two servers given the same value share it.
    func makeStore() -> ServerConfiguration.Store {
        switch self {
        case .memory: return .memory
        case .sqlite:
            return .sqlite(path: TemporaryFolders.sqlitePath())
        case .postgres:
            do {
                return .postgres(url: try PostgresTestCluster.shared().makeDatabase())
            } catch {
                // The test fails with the reason; the server it builds gets an unreachable database.
                Issue.record("no PostgreSQL database for the test: \(error)")
                return .postgres(url: "postgresql:///unavailable?host=/nonexistent")
            }
        }
    }
}

/// A new temporary folder, removed when the test process exits (``TemporaryFolders``). Here
/// rather than through an import of StoreTestSupport in each test file: that module's
/// synchronous `eventually` would shadow this target's asynchronous one there.
func temporaryFolder(prefix: String) -> URL {
    TemporaryFolders.make(prefix: prefix)
}

/// `jobs.sqlite` in a new temporary folder (see ``temporaryFolder(prefix:)``).
func temporarySQLitePath(prefix: String = "jobpool") -> String {
    TemporaryFolders.sqlitePath(prefix: prefix)
}

/// Test arguments print as their raw value.
protocol CustomTestStringConvertibleLike: CustomStringConvertible, RawRepresentable where RawValue == String {}
extension CustomTestStringConvertibleLike { var description: String { rawValue } }
