import Glibc

/// Checks `--host` before anything tries to bind it: a value that looks like an IPv4 address
/// (only digits and dots) must be one, and anything else must be an IPv6 address or a host
/// name by RFC 1123's rules. Otherwise `999.1.1.1` went to the resolver, and the operator read
/// "Resource temporarily unavailable".
enum HostName {
    static func isValid(_ host: String) -> Bool {
        if host.contains(":") { return parses(host, family: AF_INET6) }
        if host.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }) { return parses(host, family: AF_INET) }
        let labels = host.split(separator: ".", omittingEmptySubsequences: false)
        guard host.utf8.count <= 253, !labels.isEmpty else { return false }
        return labels.allSatisfy { label in
            (1...63).contains(label.utf8.count) && label.first != "-" && label.last != "-"
                && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
        }
    }

    private static func parses(_ text: String, family: Int32) -> Bool {
        var buffer = [UInt8](repeating: 0, count: 16)
        return inet_pton(family, text, &buffer) == 1
    }
}
