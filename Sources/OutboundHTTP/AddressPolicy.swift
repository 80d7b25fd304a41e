/// Decides which addresses outbound requests may connect to: the SSRF guard.
///
/// By default every loopback, private, link-local (including the cloud metadata address
/// 169.254.169.254), CGNAT, multicast, reserved and documentation range is refused, in IPv4 and
/// IPv6, and so are the IPv4-mapped, NAT64 and 6to4 forms of those IPv4 ranges. An operator
/// opens chosen ranges with `--allow-cidr`, or all of them with `--allow-private-networks`.
/// The check runs on the address curl is about to connect to, for every connection of every
/// redirect hop, so neither DNS rebinding nor a redirect to an internal host gets past it.
public struct AddressPolicy: Sendable {
    /// A refused address, and why.
    public struct Refusal: Sendable, Equatable {
        public var address: IPAddress
        public var rangeName: String
    }

    public var allowed: [CIDR]
    public var allowsPrivateNetworks: Bool

    public init(allowed: [CIDR] = [], allowsPrivateNetworks: Bool = false) {
        self.allowed = allowed
        self.allowsPrivateNetworks = allowsPrivateNetworks
    }

    /// `nil` if `address` may be connected to, else the refusal.
    public func check(_ address: IPAddress) -> Refusal? {
        if allowsPrivateNetworks || allowed.contains(where: { $0.contains(address) }) { return nil }
        if let inner = address.embeddedIPv4 {
            // The IPv6 form of an IPv4 address is judged as that IPv4 address.
            if allowed.contains(where: { $0.contains(inner) }) { return nil }
            return Self.blockedRange(of: inner).map { Refusal(address: address, rangeName: $0) }
        }
        return Self.blockedRange(of: address).map { Refusal(address: address, rangeName: $0) }
    }

    /// What an operator can pass to allow `refusal`'s address.
    public static func advice(for refusal: Refusal) -> String {
        // The IPv6 forms of an IPv4 address are allowed along with that address.
        let address = refusal.address.embeddedIPv4 ?? refusal.address
        let single = address.isIPv4 ? "\(address)/32" : "\(address)/128"
        return "start jobpool with --allow-cidr \(single) (or JOBPOOL_ALLOW_CIDRS=\(single)), or with --allow-private-networks to allow every private range"
    }

    private static func blockedRange(of address: IPAddress) -> String? {
        blockedRanges.first { $0.range.contains(address) }?.name
    }

    /// Every range refused by default, with a name for messages.
    static let blockedRanges: [(range: CIDR, name: String)] = [
        ("0.0.0.0/8", "this-network"),
        ("10.0.0.0/8", "private"),
        ("100.64.0.0/10", "carrier-grade NAT"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local"),
        ("172.16.0.0/12", "private"),
        ("192.0.0.0/24", "IETF protocol assignments"),
        ("192.0.2.0/24", "documentation"),
        ("192.88.99.0/24", "6to4 relay anycast"),
        ("192.168.0.0/16", "private"),
        ("198.18.0.0/15", "benchmarking"),
        ("198.51.100.0/24", "documentation"),
        ("203.0.113.0/24", "documentation"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved"),
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("64:ff9b:1::/48", "local-use NAT64"),
        ("100::/64", "discard-only"),
        ("2001::/23", "IETF protocol assignments"),
        ("2001:db8::/32", "documentation"),
        ("3fff::/20", "documentation"),
        ("fc00::/7", "unique local (private)"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "site-local"),
        ("ff00::/8", "multicast"),
    ].map { (CIDR($0.0)!, $0.1) }
}
