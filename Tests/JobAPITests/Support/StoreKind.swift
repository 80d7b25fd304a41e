import Foundation
import JobpoolApp

/// The stores a suite runs against, through the real server: every query and write behaves the
/// same on each.
enum StoreKind: String, CaseIterable, Sendable, CustomTestStringConvertibleLike {
    case memory, sqlite

    /// The store the API tests run against by default: JOBPOOL_TEST_STORE (`memory` or
    /// `sqlite`), memory when unset.
    static let underTest: StoreKind = {
        guard let name = ProcessInfo.processInfo.environment["JOBPOOL_TEST_STORE"] else { return .memory }
        guard let kind = StoreKind(rawValue: name) else { fatalError("JOBPOOL_TEST_STORE must be memory or sqlite, not \(name)") }
        return kind
    }()

    /// Points `configuration` at a fresh store of this kind (SQLite in its own temporary folder).
    func apply(to configuration: inout ServerConfiguration) {
        switch self {
        case .memory: configuration.store = .memory
        case .sqlite:
            configuration.store = .sqlite(path: FileManager.default.temporaryDirectory
                .appendingPathComponent("jobpool-\(UUID().uuidString)/jobs.sqlite").path)
        }
    }
}

/// Test arguments print as their raw value.
protocol CustomTestStringConvertibleLike: CustomStringConvertible, RawRepresentable where RawValue == String {}
extension CustomTestStringConvertibleLike { var description: String { rawValue } }
