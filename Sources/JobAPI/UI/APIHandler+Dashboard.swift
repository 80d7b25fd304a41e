import EventHTTP

extension APIHandler {
    /// True for the dashboard's paths (`/ui` and everything under `/ui/`), which are served
    /// before the API's router: they are not part of the API contract.
    static func isDashboardPath(_ path: String) -> Bool {
        path == "/ui" || path.hasPrefix("/ui/")
    }

    /// `GET /ui/...`: the dashboard's files, with a strict Content-Security-Policy (no inline
    /// script, no other origin, no framing), `nosniff`, and ETag revalidation. The page asks
    /// for the API key itself, so these files are public, like `/openapi.yaml`.
    func serveDashboard(_ request: HTTPRequest) {
        guard request.method == .get || request.method == .head else {
            respond(request, problem: .methodNotAllowed(request.method?.rawValue ?? "this method",
                                                        path: String(request.path.prefix(200)), allowed: ["GET", "HEAD"]))
            return
        }
        guard request.path != "/ui" else {
            // Relative links in the page resolve against /ui/, not /.
            request.respond(status: 301, headers: [("Location", "/ui/")])
            return
        }
        let name = String(request.path.dropFirst("/ui/".count))
        guard let asset = DashboardAssets.files[name] else {
            respond(request, problem: .notFound(path: String(request.path.prefix(200))))
            return
        }
        var headers: [(name: String, value: String)] = [
            ("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"),
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "no-referrer"),
            // Revalidate every time: the ETag makes that a 304 with no body.
            ("Cache-Control", "no-cache"),
            ("ETag", asset.etag),
        ]
        if let ifNoneMatch = request.header("If-None-Match"),
           ifNoneMatch == "*" || ifNoneMatch.split(separator: ",").contains(where: { $0.trimmingCharacters(in: .whitespaces) == asset.etag }) {
            request.respond(status: 304, headers: headers)
            return
        }
        headers.append(("Content-Type", asset.contentType))
        request.respond(status: 200, headers: headers, body: asset.bytes)
    }
}
