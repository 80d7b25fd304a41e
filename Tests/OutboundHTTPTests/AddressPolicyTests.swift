import Testing
@testable import OutboundHTTP

/// The SSRF address check as a unit: no sockets, no network. Which ranges are refused, and
/// how they are named, is in SpecialRangeTests.
@Suite("Address policy")
struct AddressPolicyTests {
    private let defaultPolicy = AddressPolicy()

    @Test("--allow-cidr opens exactly its range, in IPv4 and its IPv6 forms")
    func allowCIDR() throws {
        let policy = AddressPolicy(allowed: [try #require(CIDR("127.0.0.2/32")), try #require(CIDR("fd00:1::/32"))])
        #expect(policy.check(try #require(IPAddress("127.0.0.2"))) == nil)
        #expect(policy.check(try #require(IPAddress("::ffff:127.0.0.2"))) == nil)
        #expect(policy.check(try #require(IPAddress("127.0.0.1"))) != nil)
        #expect(policy.check(try #require(IPAddress("fd00:1:ffff::1"))) == nil)
        #expect(policy.check(try #require(IPAddress("fd00:2::1"))) != nil)
        let everything = AddressPolicy(allowsPrivateNetworks: true)
        #expect(everything.check(try #require(IPAddress("169.254.169.254"))) == nil)
    }

    @Test("the refusal names the address and the flag that would allow it")
    func refusalMessage() throws {
        let metadata = try #require(IPAddress("169.254.169.254"))
        let refusal = try #require(defaultPolicy.check(metadata))
        let message = OutboundFailure.blockedAddress(refusal).message
        #expect(message.contains("169.254.169.254"))
        #expect(message.contains("link-local"))
        #expect(message.contains("--allow-cidr 169.254.169.254/32"))
        let mappedAddress = try #require(IPAddress("::ffff:127.0.0.1"))
        let mapped = try #require(defaultPolicy.check(mappedAddress))
        #expect(OutboundFailure.blockedAddress(mapped).message.contains("--allow-cidr 127.0.0.1/32"))
    }

    @Test("address text parses strictly and prints canonically", arguments: [
        ("1.2.3.4", "1.2.3.4"), ("::1", "::1"), ("2001:DB8:0:0:0:0:0:1", "2001:db8::1"),
        ("::ffff:1.2.3.4", "::ffff:1.2.3.4"), ("fe80::", "fe80::"), ("1:0:0:1:0:0:0:1", "1:0:0:1::1"),
    ])
    func parsing(text: String, canonical: String) throws {
        #expect(try #require(IPAddress(text)).description == canonical)
    }

    @Test("malformed addresses and ranges are rejected", arguments: [
        "", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1.2.3.-4", "::1::", "1:2:3:4:5:6:7:8:9",
        "gggg::1", "[::1]", "fe80::1%eth0", "1.2.3.4/33", "::/129", "10.0.0.0/x",
    ])
    func malformed(text: String) {
        if text.contains("/") {
            #expect(CIDR(text) == nil)
        } else {
            #expect(IPAddress(text) == nil)
        }
    }

    @Test("only absolute http and https URLs are fetchable", arguments: [
        ("https://example.com/a?b=c", true), ("http://127.0.0.1:8080/", true), ("http://[::1]/", true),
        ("ftp://example.com/", false), ("file:///etc/passwd", false), ("example.com", false),
        ("/relative", false), ("gopher://x/", false), ("http://", false), ("javascript:alert(1)", false),
        ("dict://127.0.0.1:11211/", false), ("HTTPS://EXAMPLE.COM/", true),
    ])
    func urls(text: String, valid: Bool) {
        #expect((OutboundURL(text) != nil) == valid)
    }
}
