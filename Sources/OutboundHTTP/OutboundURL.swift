import CCurl

/// An absolute `http` or `https` URL, parsed by curl's own URL parser so that what is checked
/// at submit time is exactly what curl will later fetch.
///
/// ```swift
/// OutboundURL("http://0x7f000001./")?.address // 127.0.0.1
/// ```
public struct OutboundURL: Sendable {
    public let scheme: String
    /// The host as curl's parser gives it, without brackets for IPv6 literals.
    public let host: String
    /// The port, explicit or the scheme's default.
    public let port: Int
    /// The address `host` spells, if it is a literal address rather than a name: read as curl
    /// will connect to it (see ``literalAddress(of:)``). `nil` for a host name.
    public let address: IPAddress?

    /// `scheme://host:port`: one destination, for per-destination limits.
    public var origin: String {
        "\(scheme)://\(host.contains(":") ? "[\(host)]" : host):\(port)"
    }

    /// `nil` unless `text` is an absolute http or https URL with a host.
    public init?(_ text: String) {
        guard text.utf8.count <= 8192, let parts = Self.parse(text),
              let scheme = parts.scheme?.lowercased(), scheme == "http" || scheme == "https",
              var host = parts.host, !host.isEmpty else { return nil }
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        // A URL without "scheme://" would be guessed as http by curl; require it to be explicit.
        guard text.lowercased().hasPrefix(scheme + "://") else { return nil }
        self.scheme = scheme
        self.host = host
        self.port = parts.port.flatMap { Int($0) } ?? (scheme == "https" ? 443 : 80)
        self.address = Self.literalAddress(of: host)
    }

    /// The address a host spells, as curl will use it. curl's URL parser has already turned the
    /// legacy IPv4 forms (`127.1`, `0x7f000001`, `2130706433`, octal parts) into a dotted quad.
    /// It keeps a trailing dot (`127.0.0.1.`), which curl drops before it connects and which a
    /// proxy's resolver ignores too: so trailing dots go, and what is left is parsed again.
    static func literalAddress(of host: String) -> IPAddress? {
        if let address = IPAddress(host) { return address }
        guard host.hasSuffix("."), !host.contains(":") else { return nil }
        let bare = String(host.reversed().drop { $0 == "." }.reversed())
        guard !bare.isEmpty, let normalized = parse("http://\(bare)/")?.host else { return nil }
        return IPAddress(normalized)
    }

    /// The parts of `text` that curl_url reads, or `nil` if it refuses the URL.
    private static func parse(_ text: String) -> (scheme: String?, host: String?, port: String?)? {
        guard let handle = curl_url() else { return nil }
        defer { curl_url_cleanup(handle) }
        guard curl_url_set(handle, CURLUPART_URL, text, 0) == CURLUE_OK else { return nil }
        func part(_ which: CURLUPart) -> String? {
            var value: UnsafeMutablePointer<CChar>?
            guard curl_url_get(handle, which, &value, 0) == CURLUE_OK, let value else { return nil }
            defer { curl_free(value) }
            return String(cString: value)
        }
        return (part(CURLUPART_SCHEME), part(CURLUPART_HOST), part(CURLUPART_PORT))
    }
}
