import Foundation
import Glibc
import JobAPI
import OutboundHTTP
import Testing

/// Fuzzed spellings of internal addresses, submitted and redirected to through the egress proxy:
/// the proxy must never be asked for one. The oracle is glibc's own numeric host parser
/// (`getaddrinfo` with `AI_NUMERICHOST`, which takes the legacy IPv4 forms too), not the
/// guard's code.
extension NetworkNamespaceTests {
    @Test("through the proxy, fuzzed spellings of internal addresses never reach it")
    func proxyFuzzedInternalSpellings() async throws {
        try requireLoopbackOnly()
        let proxy = try makeProxy()
        defer { proxy.stop() }
        let server = try TestServer {
            $0.executor.workers = 8
            $0.outbound.egressProxy = proxy.url
        }
        defer { server.stop() }
        var generator = SystemRandomNumberGenerator()
        let hosts = ["127.0.0.1", "127.1", "127.0.1", "0x7f000001", "0x7f.0.0.1", "2130706433", "017700000001",
                     "0177.0.0.01", "127.0.0.1.", "127.1..", "%31%32%37.0.0.1", "127.0.0.1%2e", "0", "0.0.0.0", "10.1",
                     "0xa9fea9fe", "169.254.169.254.", "[::1]", "[::]", "[0:0:0:0:0:0:0:1]", "[::ffff:127.0.0.1]",
                     "[::ffff:7f00:1]", "[::ffff:0:7f00:1]", "[::ffff:0:127.0.0.1]", "[::127.0.0.1]", "[fe80::1%25lo]",
                     "user@127.1", "origin.test"]
        let tails = [":1/", ":80/", "/", "/x?y#z", ":8080/a/b"]
        let urls = (0..<120).map { _ in
            let target = "http://" + hosts.randomElement(using: &generator)! + tails.randomElement(using: &generator)!
            return Bool.random(using: &generator) ? target : "\(proxyOrigin)/redirect-to?\(target)"
        }
        try await fetchAll(urls, on: server)
        #expect(!proxy.received.isEmpty, "the origin's redirects go through the proxy")
        for request in proxy.received {
            #expect(!Self.namesInternalAddress(request.path), "the proxy was asked for \(request.path)")
        }
        #expect(try await server.client.get("/healthz").status == 200)
    }

    /// True if the absolute URL's host, read by glibc as a numeric address (trailing dots and
    /// percent-encoding removed, as a resolver would), is loopback, unspecified, private,
    /// link-local, or an IPv6 form of one.
    private static func namesInternalAddress(_ url: String) -> Bool {
        guard let schemeEnd = url.range(of: "://") else { return false }
        var authority = String(url[schemeEnd.upperBound...].prefix { !"/?#".contains($0) })
        if let at = authority.lastIndex(of: "@") { authority = String(authority[authority.index(after: at)...]) }
        var host = authority.hasPrefix("[")
            ? String(authority.dropFirst().prefix { $0 != "]" }.prefix { $0 != "%" })
            : String(authority.prefix { $0 != ":" })
        host = host.removingPercentEncoding ?? host
        while host.hasSuffix(".") { host.removeLast() }
        var hints = addrinfo()
        hints.ai_flags = AI_NUMERICHOST
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &result) == 0, let info = result else { return false }
        defer { freeaddrinfo(result) }
        let raw = UnsafeRawPointer(info.pointee.ai_addr!)
        var bytes: [UInt8]
        if info.pointee.ai_family == AF_INET {
            bytes = withUnsafeBytes(of: raw.load(as: sockaddr_in.self).sin_addr) { Array($0) }
        } else {
            bytes = withUnsafeBytes(of: raw.load(as: sockaddr_in6.self).sin6_addr) { Array($0) }
            if bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF { bytes = Array(bytes[12...]) } // ::ffff:a.b.c.d
            else if bytes[0] == 0xFE, bytes[1] & 0xC0 == 0x80 { return true }                                   // fe80::/10
            else if bytes[0..<8].allSatisfy({ $0 == 0 }) { return true }                                         // ::/64 holds ::1, ::, ::a.b.c.d, ::ffff:0:a.b.c.d
            else { return false }
        }
        return bytes[0] == 127 || bytes[0] == 0 || bytes[0] == 10 || (bytes[0] == 169 && bytes[1] == 254)
    }
}
