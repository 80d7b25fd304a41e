import Testing
@testable import OutboundHTTP

/// The host of a URL as curl will use it, judged before any connection: what the guard checks
/// at submit time and, with an egress proxy, on every redirect hop. Units: no network.
@Suite("Literal hosts in URLs")
struct LiteralHostTests {
    private let client = OutboundHTTPClient(configuration: .init(policy: AddressPolicy()))

    /// Legacy IPv4 spellings that resolvers (and curl) read as 127.0.0.1, and other loopback
    /// spellings: every one is refused as loopback.
    @Test("legacy and unusual spellings of loopback are refused", arguments: [
        "http://127.0.0.1/", "http://127.1/", "http://127.0.1/", "http://0x7f000001/", "http://0x7f.1/",
        "http://0x7F.0.0.1/", "http://2130706433/", "http://017700000001/", "http://0177.0.0.1/",
        "http://0177.0.0.01/", "http://127.000.000.001/", "http://127.0.0.1./", "http://127.1./",
        "http://0x7f000001./", "http://127.0.0.1%2e/", "http://%31%32%37.0.0.1/", "http://127.0.0.1../",
        "http://[::1]/", "http://[0:0:0:0:0:0:0:1]/", "http://[::ffff:127.0.0.1]/", "http://[::ffff:7f00:1]/",
        "https://user:pass@127.0.0.1:8443/x", "http://127.0.0.1:80#frag",
    ])
    func loopbackSpellings(url: String) throws {
        let refusal = try #require(client.literalHostRefusal(url), "\(url) must be refused")
        #expect(refusal.rangeName == "loopback", "\(url): \(refusal.rangeName)")
    }

    @Test("other internal literals are refused as their own range", arguments: [
        ("http://[::ffff:0:7f00:1]/", "IPv4-translated"), ("http://[::ffff:0:127.0.0.1]/", "IPv4-translated"),
        ("http://0/", "this host"), ("http://0.0.0.0./", "this host"), ("http://0xa9fea9fe/", "link-local"),
        ("http://169.254.169.254./latest/meta-data/", "link-local"), ("http://[fe80::1%25lo]/", "link-local"),
        ("http://10.1/", "private-use"), ("http://[::127.0.0.1]/", "deprecated IPv4-compatible"),
    ])
    func otherInternal(url: String, name: String) throws {
        let refusal = try #require(client.literalHostRefusal(url), "\(url) must be refused")
        #expect(refusal.rangeName == name, "\(url): \(refusal.rangeName)")
    }

    @Test("names and public literals are left alone", arguments: [
        "http://example.com/", "http://example.com./", "http://localhost/", "http://8.8.8.8/", "http://134744072/",
        "http://[2606:4700::1111]/", "http://1.2.3.4.5/", "http://4294967296/",
    ])
    func notRefused(url: String) {
        #expect(client.literalHostRefusal(url) == nil, "\(url)")
    }
}
