import Testing
@testable import OutboundHTTP

/// Every range of the IANA IPv4 and IPv6 special-purpose address registries (and multicast,
/// and the deprecated IPv6 forms), one address each: refused with the range's own name in the
/// message and the address's own CIDR in the hint, or allowed where IANA marks the range
/// globally reachable. Units only: no sockets, no network.
@Suite("Special-purpose ranges")
struct SpecialRangeTests {
    private let policy = AddressPolicy()

    /// address, the range name the message must give, the CIDR the hint must offer.
    @Test("refused by default, named as itself", arguments: [
        // IPv4 (RFC 6890 registry, plus multicast)
        ("0.1.2.3", "this-network", "0.1.2.3/32"),
        ("0.0.0.0", "this host", "0.0.0.0/32"),
        ("10.20.30.40", "private-use", "10.20.30.40/32"),
        ("100.64.0.1", "shared (carrier-grade NAT)", "100.64.0.1/32"),
        ("127.0.0.1", "loopback", "127.0.0.1/32"),
        ("127.255.255.254", "loopback", "127.255.255.254/32"),
        ("169.254.169.254", "link-local", "169.254.169.254/32"),
        ("172.16.0.1", "private-use", "172.16.0.1/32"),
        ("192.0.0.200", "IETF protocol assignments", "192.0.0.200/32"),
        ("192.0.0.1", "IPv4 service continuity", "192.0.0.1/32"),
        ("192.0.0.8", "IPv4 dummy", "192.0.0.8/32"),
        ("192.0.0.170", "NAT64/DNS64 discovery", "192.0.0.170/32"),
        ("192.0.0.171", "NAT64/DNS64 discovery", "192.0.0.171/32"),
        ("192.0.2.1", "documentation (TEST-NET-1)", "192.0.2.1/32"),
        ("192.88.99.1", "deprecated 6to4 relay anycast", "192.88.99.1/32"),
        ("192.168.1.1", "private-use", "192.168.1.1/32"),
        ("198.18.0.1", "benchmarking", "198.18.0.1/32"),
        ("198.19.255.255", "benchmarking", "198.19.255.255/32"),
        ("198.51.100.7", "documentation (TEST-NET-2)", "198.51.100.7/32"),
        ("203.0.113.9", "documentation (TEST-NET-3)", "203.0.113.9/32"),
        ("224.0.0.1", "multicast", "224.0.0.1/32"),
        ("239.255.255.250", "multicast", "239.255.255.250/32"),
        ("240.0.0.1", "reserved", "240.0.0.1/32"),
        ("255.255.255.255", "limited broadcast", "255.255.255.255/32"),
        // IPv6 (RFC 6890 registry, plus multicast and the deprecated forms)
        ("::1", "loopback", "::1/128"),
        ("::", "unspecified", "::/128"),
        ("::2", "deprecated IPv4-compatible", "::2/128"),
        ("::127.0.0.1", "deprecated IPv4-compatible", "::127.0.0.1/128"),
        ("::ffff:127.0.0.1", "loopback", "127.0.0.1/32"),
        ("::ffff:10.0.0.1", "private-use", "10.0.0.1/32"),
        ("::ffff:169.254.169.254", "link-local", "169.254.169.254/32"),
        ("::ffff:0:7f00:1", "IPv4-translated", "::ffff:0:7f00:1/128"),
        ("::ffff:0:808:808", "IPv4-translated", "::ffff:0:808:808/128"),
        ("64:ff9b::127.0.0.1", "loopback", "127.0.0.1/32"),
        ("64:ff9b::a9fe:a9fe", "link-local", "169.254.169.254/32"),
        ("64:ff9b:1::1", "local-use NAT64", "64:ff9b:1::1/128"),
        ("100::1", "discard-only", "100::1/128"),
        ("100:0:0:1::1", "dummy IPv6 prefix", "100:0:0:1::1/128"),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo", "2001:0:4136:e378:8000:63bf:3fff:fdd2/128"),
        ("2001:1::4", "IETF protocol assignments", "2001:1::4/128"),
        ("2001:2::1", "benchmarking", "2001:2::1/128"),
        ("2001:10::1", "deprecated ORCHID", "2001:10::1/128"),
        ("2001:100::1", "IETF protocol assignments", "2001:100::1/128"),
        ("2001:db8::1", "documentation", "2001:db8::1/128"),
        ("2002:7f00:1::", "loopback", "127.0.0.1/32"),
        ("2002:c0a8:101::1", "private-use", "192.168.1.1/32"),
        ("3fff::1", "documentation", "3fff::1/128"),
        ("5f00::1", "segment routing (SRv6)", "5f00::1/128"),
        ("fc00::1", "unique-local", "fc00::1/128"),
        ("fd12:3456::1", "unique-local", "fd12:3456::1/128"),
        ("fe80::1", "link-local", "fe80::1/128"),
        ("febf::1", "link-local", "febf::1/128"),
        ("fec0::1", "deprecated site-local", "fec0::1/128"),
        ("ff02::1", "multicast", "ff02::1/128"),
    ])
    func refused(text: String, name: String, hint: String) throws {
        let address = try #require(IPAddress(text))
        let refusal = try #require(policy.check(address), "\(text) must be refused")
        #expect(refusal.rangeName == name)
        let message = OutboundFailure.blockedAddress(refusal).message
        #expect(message.contains("in the \(name) range"), "\(message)")
        #expect(message.contains("--allow-cidr \(hint) "), "\(message)")
        // The hint really opens the address, and only a range that holds it.
        let opened = AddressPolicy(allowed: [try #require(CIDR(hint))])
        #expect(opened.check(address) == nil, "\(hint) must open \(text)")
    }

    /// Ranges in the registries that IANA marks globally reachable (anycast services and
    /// public prefixes inside blocked blocks), and ordinary public addresses.
    @Test("allowed by default", arguments: [
        "192.0.0.9", "192.0.0.10", "192.31.196.1", "192.52.193.1", "192.175.48.1",
        "2001:1::1", "2001:1::2", "2001:1::3", "2001:3::1", "2001:4:112::1", "2001:20::1", "2001:30::1",
        "2620:4f:8000::1",
        "93.184.216.34", "8.8.8.8", "172.32.0.1", "172.15.255.255", "100.128.0.1", "100.63.255.255",
        "169.253.255.255", "192.169.0.1", "223.255.255.255", "2606:4700::1111", "2a00:1450:4001::200e",
        "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1",
    ])
    func allowed(text: String) throws {
        let address = try #require(IPAddress(text))
        #expect(policy.check(address) == nil, "\(text) must be allowed")
    }

    @Test("the hint for ::1 does not open 0.0.0.1, nor the other way round")
    func loopbackIsNotCompatible() throws {
        let opensV4 = AddressPolicy(allowed: [try #require(CIDR("0.0.0.1/32"))])
        #expect(opensV4.check(try #require(IPAddress("::1"))) != nil)
        let opensV6 = AddressPolicy(allowed: [try #require(CIDR("::1/128"))])
        #expect(opensV6.check(try #require(IPAddress("::1"))) == nil)
        #expect(opensV6.check(try #require(IPAddress("0.0.0.1"))) != nil)
    }

    @Test("every range in the table is judged by its own verdict, under its own name")
    func wholeTable() throws {
        for special in SpecialRange.table {
            // The range's first and last addresses; a smaller range may hold one of them.
            let last = try #require(IPAddress(bytes: special.range.network.bytes.enumerated().map { index, byte in
                byte | UInt8(truncatingIfNeeded: 0xFF >> min(8, max(0, special.range.prefixLength - index * 8)))
            }))
            let own = [special.range.network, last].filter { SpecialRange.containing($0)?.range == special.range }
            #expect(!own.isEmpty, "\(special.range) is shadowed by smaller ranges")
            for address in own {
                switch special.verdict {
                case .refused: #expect(policy.check(address)?.rangeName == special.name, "\(address)")
                case .globallyReachable: #expect(policy.check(address) == nil, "\(address)")
                case .judgedAsEmbeddedIPv4:
                    let inner = try #require(address.embeddedIPv4, "\(address)")
                    #expect(policy.check(address)?.rangeName == policy.check(inner)?.rangeName, "\(address)")
                }
            }
        }
    }
}
