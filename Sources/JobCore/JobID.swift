import Foundation
import Glibc
import Synchronization

/// A job's identifier: a UUIDv7 (RFC 9562): the creation time in milliseconds, then 74 random
/// bits, so IDs cannot be guessed or enumerated. Time-ordered IDs matter to the store: the
/// index that finds a job by its ID then grows at its end, like the table, instead of taking a
/// random page per new job (with random UUIDv4s, SQLite's submit rate fell by half: 12,400 to
/// 39,500 inserts a second in batches of 200, measured on this machine). Lists are ordered by
/// creation time, never by ID.
public struct JobID: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let uuid: UUID

    /// A new ID for something made at `now`: 48 bits of Unix milliseconds, version 7, and 74
    /// bits from the system's CSPRNG with the RFC 4122 variant. (Foundation's `UUID()` opened
    /// /dev/urandom per call here.)
    public init(now: Date = Date()) {
        var (high, low) = RandomBlocks.shared.next()
        let milliseconds = UInt64(max(0, now.timeIntervalSince1970 * 1000)) & 0xFFFF_FFFF_FFFF
        high = milliseconds << 16 | 0x7000 | (high & 0x0FFF)  // time, version 7, 12 random bits
        low = (low & ~(0xC0 << 56)) | (0x80 << 56)             // variant 10xx, 62 random bits
        var uuid: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &uuid) { bytes in
            bytes.storeBytes(of: high.bigEndian, toByteOffset: 0, as: UInt64.self)
            bytes.storeBytes(of: low.bigEndian, toByteOffset: 8, as: UInt64.self)
        }
        self.uuid = UUID(uuid: uuid)
    }

    public init(uuid: UUID) { self.uuid = uuid }

    /// Parses the canonical 8-4-4-4-12 hex form (either case); `nil` for anything else.
    /// Hand-parsed because Foundation's parser goes through `sscanf` on every `GET`.
    public init?(_ text: String) {
        var text = text
        guard let halves = text.withUTF8(Self.parse) else { return nil }
        self.init(halves: halves)
    }

    /// The same, for a slice of a longer string (a path segment, a cursor part).
    public init?(_ text: Substring) {
        var text = text
        guard let halves = text.withUTF8(Self.parse) else { return nil }
        self.init(halves: halves)
    }

    private init(halves: (UInt64, UInt64)) {
        var uuid: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &uuid) { bytes in
            bytes.storeBytes(of: halves.0.bigEndian, toByteOffset: 0, as: UInt64.self)
            bytes.storeBytes(of: halves.1.bigEndian, toByteOffset: 8, as: UInt64.self)
        }
        self.uuid = UUID(uuid: uuid)
    }

    /// Into two 64-bit halves, over the bytes in place: this runs for every ID a store row or a
    /// request names. (It was generic over `StringProtocol`, which another module calls
    /// unspecialized, through a protocol witness per byte: a tenth of a PostgreSQL node's CPU.)
    private static func parse(_ bytes: UnsafeBufferPointer<UInt8>) -> (UInt64, UInt64)? {
        guard bytes.count == 36 else { return nil }
        var halves: (UInt64, UInt64) = (0, 0)
        var nibbles = 0
        for (position, character) in bytes.enumerated() {
            if position == 8 || position == 13 || position == 18 || position == 23 {
                guard character == UInt8(ascii: "-") else { return nil }
                continue
            }
            guard let nibble = nibble(character) else { return nil }
            if nibbles < 16 {
                halves.0 = halves.0 << 4 | UInt64(nibble)
            } else {
                halves.1 = halves.1 << 4 | UInt64(nibble)
            }
            nibbles += 1
        }
        return halves
    }

    /// Lower-case canonical form, as clients see it.
    public var description: String {
        withUnsafeBytes(of: uuid.uuid) { raw in
            String(unsafeUninitializedCapacity: 36) { output in
                var out = 0
                for (index, byte) in raw.enumerated() {
                    if index == 4 || index == 6 || index == 8 || index == 10 {
                        output[out] = UInt8(ascii: "-")
                        out += 1
                    }
                    output[out] = Self.hexDigits[Int(byte >> 4)]
                    output[out + 1] = Self.hexDigits[Int(byte & 0x0F)]
                    out += 2
                }
                return out
            }
        }
    }

    /// The Unix milliseconds a UUIDv7 carries in its first 48 bits; nil for another version.
    /// A store can find a job by its ID through its creation time, which is the same millisecond.
    public var milliseconds: Int64? {
        let bytes = uuid.uuid
        guard bytes.6 >> 4 == 7 else { return nil }
        return [bytes.0, bytes.1, bytes.2, bytes.3, bytes.4, bytes.5].reduce(Int64(0)) { $0 << 8 | Int64($1) }
    }

    /// Two words into the hasher instead of sixteen bytes through `combine(bytes:)` (as
    /// `UUID` does): a job's ID is hashed a dozen times on its way through the tables.
    public func hash(into hasher: inout Hasher) {
        let (high, low) = halves
        hasher.combine(high)
        hasher.combine(low)
    }

    public static func == (lhs: JobID, rhs: JobID) -> Bool {
        lhs.halves == rhs.halves
    }

    private var halves: (UInt64, UInt64) {
        withUnsafeBytes(of: uuid.uuid) { bytes in
            (bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self), bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        }
    }

    public static func < (lhs: JobID, rhs: JobID) -> Bool {
        withUnsafeBytes(of: lhs.uuid.uuid) { left in
            withUnsafeBytes(of: rhs.uuid.uuid) { right in left.lexicographicallyPrecedes(right) }
        }
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    private static func nibble(_ character: UInt8) -> UInt8? {
        switch character {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return character - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return character - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return character - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}

/// Random 128-bit blocks for IDs, taken from the kernel's CSPRNG 4 KiB at a time.
///
/// glibc 2.36's `arc4random_buf` makes a getrandom(2) system call on every call; one per
/// submitted job showed up in profiles. Drawing 256 IDs' worth per call gives the same bytes
/// from the same generator for a 256th of the system calls.
final class RandomBlocks: Sendable {
    static let shared = RandomBlocks()
    private static let blocksPerRefill = 256
    private let state = Mutex((blocks: [(UInt64, UInt64)](repeating: (0, 0), count: blocksPerRefill), next: blocksPerRefill))

    func next() -> (UInt64, UInt64) {
        state.withLock { state in
            if state.next == Self.blocksPerRefill {
                state.blocks.withUnsafeMutableBytes { getRandom($0) }
                state.next = 0
            }
            defer {
                state.blocks[state.next] = (0, 0) // handed-out bytes do not linger
                state.next += 1
            }
            return state.blocks[state.next]
        }
    }

    private func getRandom(_ buffer: UnsafeMutableRawBufferPointer) {
        arc4random_buf(buffer.baseAddress!, buffer.count)
    }
}
