/// One entry of the guard's range table: a range of the IANA special-purpose address
/// registries (IPv4 and IPv6, RFC 6890), or one of the few other ranges the guard must know
/// (multicast, the deprecated IPv6 forms).
///
/// The most specific range holding an address decides. So `192.0.0.9/32` (an anycast service
/// IANA marks globally reachable) is allowed inside the refused `192.0.0.0/24`, and `::1/128`
/// is loopback, not the IPv4-compatible form of `0.0.0.1` inside `::/96`.
struct SpecialRange: Sendable {
    /// What the guard does with an address in the range.
    enum Verdict: Sendable {
        /// Refused unless an operator allows it: not globally reachable, or reachable only
        /// inside some network (the registry's "Globally Reachable: False").
        case refused
        /// Allowed: the registry marks it globally reachable, so it is no internal address.
        case globallyReachable
        /// An IPv6 form that a host, NAT64 gateway or 6to4 relay turns into the IPv4 address
        /// inside it (``IPAddress/embeddedIPv4``): judged as that IPv4 address.
        case judgedAsEmbeddedIPv4
    }

    let range: CIDR
    /// How messages name the range: "Refused to connect to ..., in the `name` range".
    let name: String
    let verdict: Verdict

    /// The most specific range in the table that holds `address`, if any.
    static func containing(_ address: IPAddress) -> SpecialRange? {
        table.filter { $0.range.contains(address) }.max { $0.range.prefixLength < $1.range.prefixLength }
    }

    /// Reviewed against the IANA registries of 2025 (iana-ipv4-special-registry,
    /// iana-ipv6-special-registry). Globally reachable entries are listed too, so that the
    /// table shows the whole review.
    static let table: [SpecialRange] = [
        // IPv4
        SpecialRange("0.0.0.0/8", "this-network", .refused),
        SpecialRange("0.0.0.0/32", "this host", .refused),
        SpecialRange("10.0.0.0/8", "private-use", .refused),
        SpecialRange("100.64.0.0/10", "shared (carrier-grade NAT)", .refused),
        SpecialRange("127.0.0.0/8", "loopback", .refused),
        SpecialRange("169.254.0.0/16", "link-local", .refused),
        SpecialRange("172.16.0.0/12", "private-use", .refused),
        SpecialRange("192.0.0.0/24", "IETF protocol assignments", .refused),
        SpecialRange("192.0.0.0/29", "IPv4 service continuity", .refused),
        SpecialRange("192.0.0.8/32", "IPv4 dummy", .refused),
        SpecialRange("192.0.0.9/32", "port control protocol anycast", .globallyReachable),
        SpecialRange("192.0.0.10/32", "TURN anycast", .globallyReachable),
        SpecialRange("192.0.0.170/31", "NAT64/DNS64 discovery", .refused),
        SpecialRange("192.0.2.0/24", "documentation (TEST-NET-1)", .refused),
        SpecialRange("192.31.196.0/24", "AS112", .globallyReachable),
        SpecialRange("192.52.193.0/24", "AMT", .globallyReachable),
        SpecialRange("192.88.99.0/24", "deprecated 6to4 relay anycast", .refused),
        SpecialRange("192.168.0.0/16", "private-use", .refused),
        SpecialRange("192.175.48.0/24", "AS112 direct delegation", .globallyReachable),
        SpecialRange("198.18.0.0/15", "benchmarking", .refused),
        SpecialRange("198.51.100.0/24", "documentation (TEST-NET-2)", .refused),
        SpecialRange("203.0.113.0/24", "documentation (TEST-NET-3)", .refused),
        SpecialRange("224.0.0.0/4", "multicast", .refused),
        SpecialRange("240.0.0.0/4", "reserved", .refused),
        SpecialRange("255.255.255.255/32", "limited broadcast", .refused),
        // IPv6
        SpecialRange("::/128", "unspecified", .refused),
        SpecialRange("::1/128", "loopback", .refused),
        SpecialRange("::/96", "deprecated IPv4-compatible", .refused),           // RFC 4291 §2.5.5.1
        SpecialRange("::ffff:0:0/96", "IPv4-mapped", .judgedAsEmbeddedIPv4),
        SpecialRange("::ffff:0:0:0/96", "IPv4-translated", .refused),            // RFC 2765 (SIIT)
        SpecialRange("64:ff9b::/96", "NAT64", .judgedAsEmbeddedIPv4),
        SpecialRange("64:ff9b:1::/48", "local-use NAT64", .refused),
        SpecialRange("100::/64", "discard-only", .refused),
        SpecialRange("100:0:0:1::/64", "dummy IPv6 prefix", .refused),
        SpecialRange("2001::/23", "IETF protocol assignments", .refused),
        SpecialRange("2001::/32", "Teredo", .refused),
        SpecialRange("2001:1::1/128", "port control protocol anycast", .globallyReachable),
        SpecialRange("2001:1::2/128", "TURN anycast", .globallyReachable),
        SpecialRange("2001:1::3/128", "DNS-SD SRP anycast", .globallyReachable),
        SpecialRange("2001:2::/48", "benchmarking", .refused),
        SpecialRange("2001:3::/32", "AMT", .globallyReachable),
        SpecialRange("2001:4:112::/48", "AS112", .globallyReachable),
        SpecialRange("2001:10::/28", "deprecated ORCHID", .refused),
        SpecialRange("2001:20::/28", "ORCHIDv2", .globallyReachable),
        SpecialRange("2001:30::/28", "drone remote ID entity tags", .globallyReachable),
        SpecialRange("2001:db8::/32", "documentation", .refused),
        SpecialRange("2002::/16", "6to4", .judgedAsEmbeddedIPv4),
        SpecialRange("2620:4f:8000::/48", "AS112 direct delegation", .globallyReachable),
        SpecialRange("3fff::/20", "documentation", .refused),
        SpecialRange("5f00::/16", "segment routing (SRv6)", .refused),
        SpecialRange("fc00::/7", "unique-local", .refused),
        SpecialRange("fe80::/10", "link-local", .refused),
        SpecialRange("fec0::/10", "deprecated site-local", .refused),           // RFC 3879
        SpecialRange("ff00::/8", "multicast", .refused),
    ]

    /// `range` is a literal of the table above: a typo fails every test at once.
    private init(_ range: String, _ name: String, _ verdict: Verdict) {
        self.range = CIDR(range)!
        self.name = name
        self.verdict = verdict
    }
}
