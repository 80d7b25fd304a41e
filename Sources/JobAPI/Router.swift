import EventHTTP
import JobCore

/// The API's routes, matched from a method and a path.
enum Route: Equatable, Sendable {
    case health
    case ready
    case metrics
    case openAPI
    case stats
    case events
    case submitJob
    case submitBatch
    case listJobs
    case getJob(id: String)
    case jobEvents(id: String)
    case cancelJob(id: String)
    case listDeliveries(id: String)
    case redeliver(id: String)
}

/// Matches requests to routes through one table, which is also what the contract test checks
/// against `openapi/openapi.yaml`. A known path with an unsupported method is a 405 with
/// `Allow`; anything else unknown is a 404.
enum Router {
    struct Entry: Sendable {
        /// The path as the OpenAPI document writes it, with `{id}` for a job ID.
        let template: String
        let method: HTTPMethod
        let make: @Sendable (_ id: String) -> Route
    }

    /// Every route. A literal path comes before a templated one it could also match
    /// (`/v1/jobs/batch` before `/v1/jobs/{id}`).
    static let table: [Entry] = [
        Entry(template: "/healthz", method: .get) { _ in .health },
        Entry(template: "/readyz", method: .get) { _ in .ready },
        Entry(template: "/metrics", method: .get) { _ in .metrics },
        Entry(template: "/openapi.yaml", method: .get) { _ in .openAPI },
        Entry(template: "/v1/stats", method: .get) { _ in .stats },
        Entry(template: "/v1/events", method: .get) { _ in .events },
        Entry(template: "/v1/jobs", method: .get) { _ in .listJobs },
        Entry(template: "/v1/jobs", method: .post) { _ in .submitJob },
        Entry(template: "/v1/jobs/batch", method: .post) { _ in .submitBatch },
        Entry(template: "/v1/jobs/{id}", method: .get) { .getJob(id: $0) },
        Entry(template: "/v1/jobs/{id}/events", method: .get) { .jobEvents(id: $0) },
        Entry(template: "/v1/jobs/{id}/cancel", method: .post) { .cancelJob(id: $0) },
        Entry(template: "/v1/jobs/{id}/deliveries", method: .get) { .listDeliveries(id: $0) },
        Entry(template: "/v1/jobs/{id}/deliveries/redeliver", method: .post) { .redeliver(id: $0) },
    ]

    /// One segment of a template: literal bytes, or nil for `{id}`.
    private typealias Segment = [UInt8]?

    /// The table by segment count, so that a request is compared with a handful of templates.
    private static let templatesBySegmentCount: [[(entry: Entry, segments: [Segment])]] = {
        let split = table.map { entry in
            (entry: entry, segments: entry.template.split(separator: "/").map { $0 == "{id}" ? nil : Array($0.utf8) })
        }
        let longest = split.map(\.segments.count).max() ?? 0
        return (0...longest).map { count in split.filter { $0.segments.count == count } }
    }()

    /// The route and its template (a stable name for logs and metrics, without IDs in it).
    /// Where a literal path and a templated one both match (`/v1/jobs/batch`), only the literal
    /// counts, for routing and for `Allow` alike.
    static func route(method: HTTPMethod?, path: String) throws(Problem) -> (route: Route, template: String) {
        // Split as bytes: splitting a String by Character cost more than the rest of a GET's routing.
        let segments = path.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: true)
        var candidates: [(entry: Entry, id: Substring.UTF8View)] = []
        var mostLiteral = -1
        let templates = segments.count < templatesBySegmentCount.count ? templatesBySegmentCount[segments.count] : []
        for (entry, pattern) in templates {
            var id = Substring().utf8
            var literals = 0
            let matches = zip(pattern, segments).allSatisfy { expected, actual in
                guard let expected else { id = actual; return true }
                literals += 1
                return expected.elementsEqual(actual)
            }
            guard matches, literals >= mostLiteral else { continue }
            if literals > mostLiteral { candidates = []; mostLiteral = literals }
            candidates.append((entry, id))
        }
        // HEAD is served wherever GET is; evhttp drops the body.
        if let found = candidates.first(where: { method == $0.entry.method || (method == .head && $0.entry.method == .get) }) {
            return (found.entry.make(String(Substring(found.id))), found.entry.template)
        }
        guard candidates.isEmpty else {
            throw Problem.methodNotAllowed(method?.rawValue ?? "this method", path: String(path.prefix(200)),
                                           allowed: candidates.map(\.entry.method.rawValue))
        }
        throw Problem.notFound(path: String(path.prefix(200)))
    }
}
