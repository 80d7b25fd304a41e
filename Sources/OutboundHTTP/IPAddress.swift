import Glibc

/// An IPv4 or IPv6 address, as raw bytes (4 or 16).
///
/// Text is read and written by the C library (`inet_pton`, `inet_ntop`), not by hand: the
/// guard must agree with the resolver about what an address is. `inet_pton` takes only the
/// plain forms (dotted quad, RFC 4291 IPv6); legacy IPv4 spellings such as `127.1` or
/// `0x7f000001` are normalized by curl's URL parser before they get here (see ``OutboundURL``).
///
/// ```swift
/// IPAddress("::ffff:127.0.0.1")?.embeddedIPv4 // 127.0.0.1
/// ```
public struct IPAddress: Sendable, Hashable, CustomStringConvertible {
    /// 4 bytes for IPv4, 16 for IPv6, in network order.
    public let bytes: [UInt8]

    /// `nil` unless `bytes` holds 4 or 16 bytes.
    public init?(bytes: [UInt8]) {
        guard bytes.count == 4 || bytes.count == 16 else { return nil }
        self.bytes = bytes
    }

    /// True for a 4-byte address.
    public var isIPv4: Bool { bytes.count == 4 }

    /// Parses a dotted-quad IPv4 or an RFC 4291 IPv6 address with `inet_pton`. Brackets, zone
    /// IDs and legacy IPv4 forms are not accepted.
    public init?(_ text: String) {
        var buffer = [UInt8](repeating: 0, count: 16)
        if inet_pton(AF_INET, text, &buffer) == 1 {
            bytes = Array(buffer[0..<4])
        } else if inet_pton(AF_INET6, text, &buffer) == 1 {
            bytes = buffer
        } else {
            return nil
        }
    }

    /// The IPv4 address that a connection to this IPv6 address really reaches: the kernel's
    /// IPv4-mapped form (`::ffff:a.b.c.d`), the well-known NAT64 prefix (`64:ff9b::a.b.c.d`)
    /// and 6to4 (`2002:aabb:ccdd::/48`), each of which a host, a NAT64 gateway or a relay
    /// turns into IPv4. Other IPv6 ranges that spell an IPv4 address inside (IPv4-compatible
    /// `::a.b.c.d`, IPv4-translated `::ffff:0:a.b.c.d`) are judged as themselves.
    public var embeddedIPv4: IPAddress? {
        guard bytes.count == 16 else { return nil }
        let prefix = bytes[0..<12]
        if prefix.elementsEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF])            // ::ffff:0:0/96
            || prefix.elementsEqual([0, 0x64, 0xFF, 0x9B, 0, 0, 0, 0, 0, 0, 0, 0]) {   // 64:ff9b::/96
            return IPAddress(bytes: Array(bytes[12..<16]))
        }
        if bytes[0] == 0x20, bytes[1] == 0x02 { return IPAddress(bytes: Array(bytes[2..<6])) } // 2002::/16
        return nil
    }

    /// The address as `inet_ntop` writes it (RFC 5952 for IPv6).
    public var description: String {
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let written = bytes.withUnsafeBytes {
            inet_ntop(isIPv4 ? AF_INET : AF_INET6, $0.baseAddress, &text, socklen_t(text.count))
        }
        return written == nil ? "?" : text.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }
}

/// An address range such as `10.0.0.0/8` or `fc00::/7`.
public struct CIDR: Sendable, Hashable, CustomStringConvertible {
    /// The range's first address as written; bits past the prefix are ignored.
    public let network: IPAddress
    /// How many leading bits the range fixes.
    public let prefixLength: Int

    /// Parses `address/length`; a bare address means a single host.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let first = parts.first, let address = IPAddress(String(first)) else { return nil }
        let maximum = address.bytes.count * 8
        if parts.count == 2 {
            guard parts[1].allSatisfy(\.isASCII), let length = Int(parts[1]), (0...maximum).contains(length) else { return nil }
            prefixLength = length
        } else {
            prefixLength = maximum
        }
        network = address
    }

    /// True if `address` is of the same family and shares the first `prefixLength` bits.
    public func contains(_ address: IPAddress) -> Bool {
        guard address.bytes.count == network.bytes.count else { return false }
        var remaining = prefixLength
        for index in 0..<address.bytes.count where remaining > 0 {
            let bits = min(8, remaining)
            let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - bits))
            if address.bytes[index] & mask != network.bytes[index] & mask { return false }
            remaining -= bits
        }
        return true
    }

    /// `network/prefixLength`.
    public var description: String { "\(network)/\(prefixLength)" }
}
