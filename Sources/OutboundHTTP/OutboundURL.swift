import CCurl

/// An absolute `http` or `https` URL, parsed by curl's own URL parser so that what is checked
/// at submit time is exactly what curl will later fetch.
public struct OutboundURL: Sendable {
    public let scheme: String
    /// The host, without brackets for IPv6 literals.
    public let host: String
    /// The port, explicit or the scheme's default.
    public let port: Int

    /// `scheme://host:port`: one destination, for per-destination limits.
    public var origin: String {
        "\(scheme)://\(host.contains(":") ? "[\(host)]" : host):\(port)"
    }

    /// `nil` unless `text` is an absolute http or https URL with a host.
    public init?(_ text: String) {
        guard text.utf8.count <= 8192, let handle = curl_url() else { return nil }
        defer { curl_url_cleanup(handle) }
        guard curl_url_set(handle, CURLUPART_URL, text, 0) == CURLUE_OK else { return nil }
        func part(_ which: CURLUPart) -> String? {
            var value: UnsafeMutablePointer<CChar>?
            guard curl_url_get(handle, which, &value, 0) == CURLUE_OK, let value else { return nil }
            defer { curl_free(value) }
            return String(cString: value)
        }
        guard let scheme = part(CURLUPART_SCHEME)?.lowercased(), scheme == "http" || scheme == "https",
              var host = part(CURLUPART_HOST), !host.isEmpty else { return nil }
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        // A URL without "scheme://" would be guessed as http by curl; require it to be explicit.
        guard text.lowercased().hasPrefix(scheme + "://") else { return nil }
        self.scheme = scheme
        self.host = host
        self.port = part(CURLUPART_PORT).flatMap { Int($0) } ?? (scheme == "https" ? 443 : 80)
    }
}
