import Foundation
import Glibc

/// A job's identifier: a random UUIDv4 (122 random bits), so IDs cannot be guessed or
/// enumerated. Lists are ordered by creation time, never by ID.
public struct JobID: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let uuid: UUID

    /// A new random ID: 122 bits from the system's CSPRNG, with the version 4 and RFC 4122
    /// variant bits set. (Foundation's `UUID()` opened /dev/urandom per call here.)
    public init() {
        var random = (UInt64(0), UInt64(0))
        // glibc's arc4random: a ChaCha20 CSPRNG seeded from the kernel, with no system call
        // per ID (SystemRandomNumberGenerator makes a getrandom(2) call per 8 bytes).
        withUnsafeMutableBytes(of: &random) { arc4random_buf($0.baseAddress!, 16) }
        var high = random.0
        var low = random.1
        high = (high & ~0xF000) | 0x4000                      // version 4
        low = (low & ~(0xC0 << 56)) | (0x80 << 56)            // variant 10xx
        let bytes = withUnsafeBytes(of: (high.bigEndian, low.bigEndian)) { Array($0) }
        uuid = UUID(uuid: (bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
                           bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]))
    }

    public init(uuid: UUID) { self.uuid = uuid }

    /// Parses the canonical 8-4-4-4-12 hex form (either case); `nil` for anything else.
    /// Hand-parsed because Foundation's parser goes through `sscanf` on every `GET`.
    public init?(_ text: some StringProtocol) {
        var utf8 = text.utf8.makeIterator()
        var bytes = [UInt8](repeating: 0, count: 16)
        var position = 0
        var byteIndex = 0
        var high: UInt8?
        while let character = utf8.next() {
            defer { position += 1 }
            if position == 8 || position == 13 || position == 18 || position == 23 {
                guard character == UInt8(ascii: "-") else { return nil }
                continue
            }
            guard position < 36, let nibble = Self.nibble(character) else { return nil }
            if let first = high {
                bytes[byteIndex] = first << 4 | nibble
                byteIndex += 1
                high = nil
            } else {
                high = nibble
            }
        }
        guard position == 36 else { return nil }
        uuid = UUID(uuid: (bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
                           bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]))
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
