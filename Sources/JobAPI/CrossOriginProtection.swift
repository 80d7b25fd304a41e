import Foundation

/// Refuses unsafe requests that a browser makes for a page of another origin, so that any web
/// page cannot submit or cancel jobs through a visitor's browser (a jobpool without API keys on
/// `localhost` is otherwise open to every site the visitor opens).
///
/// The rule is Go's `net/http` `CrossOriginProtection`: GET, HEAD and OPTIONS always pass. For
/// any other method, `Sec-Fetch-Site` decides when the browser sends it (`same-origin` and
/// `none` pass, anything else is refused); an older browser that sends only `Origin` passes
/// when that origin's host is the request's `Host`; a request with neither header is not from a
/// browser (curl, a server, a script) and passes.
///
/// ```swift
/// if let problem = CrossOriginProtection.problem(method: "POST", secFetchSite: "cross-site",
///                                                origin: nil, host: "localhost:8080") { ... }
/// ```
enum CrossOriginProtection {
    /// A 403 problem if the request is a cross-origin browser request with an unsafe method.
    static func problem(method: String?, secFetchSite: String?, origin: String?, host: String?) -> Problem? {
        if let method, ["GET", "HEAD", "OPTIONS"].contains(method) { return nil }
        if let site = secFetchSite?.trimmingCharacters(in: .whitespaces).lowercased(), !site.isEmpty {
            return site == "same-origin" || site == "none" ? nil : refusal("Sec-Fetch-Site: \(site.prefix(40))")
        }
        guard let origin = origin?.trimmingCharacters(in: .whitespaces), !origin.isEmpty else { return nil }
        if let host, let originHost = Self.host(ofOrigin: origin), originHost.lowercased() == host.lowercased() { return nil }
        return refusal("Origin: \(origin.prefix(100))")
    }

    /// `host[:port]` of an origin such as `https://example.com:8443`; nil for `null` or junk.
    private static func host(ofOrigin origin: String) -> Substring? {
        guard let separator = origin.range(of: "://") else { return nil }
        let rest = origin[separator.upperBound...]
        let host = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        return host.isEmpty ? nil : host
    }

    private static func refusal(_ evidence: String) -> Problem {
        Problem("cross-origin-request", title: "Cross-origin request refused", status: 403,
                detail: "This request came from a web page of another origin (\(evidence)). jobpool refuses unsafe requests from other sites' pages, so that a page cannot submit or cancel jobs through a visitor's browser. Call the API from a server, a script or the command line, or from a page served by jobpool's own origin.")
    }
}
