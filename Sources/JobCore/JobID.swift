import Foundation

/// A job's identifier: a random UUIDv4 (122 random bits), so IDs cannot be guessed or
/// enumerated. Lists are ordered by creation time, never by ID.
public struct JobID: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let uuid: UUID

    /// A new random ID.
    public init() { uuid = UUID() }

    public init(uuid: UUID) { self.uuid = uuid }

    /// Parses the canonical text form; `nil` for anything else.
    public init?(_ text: some StringProtocol) {
        guard text.utf8.count == 36, let uuid = UUID(uuidString: String(text)) else { return nil }
        self.uuid = uuid
    }

    /// Lower-case canonical form, as clients see it.
    public var description: String { uuid.uuidString.lowercased() }

    public static func < (lhs: JobID, rhs: JobID) -> Bool {
        lhs.uuid.uuidString < rhs.uuid.uuidString
    }
}
