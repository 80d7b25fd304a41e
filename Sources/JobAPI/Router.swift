import EventHTTP
import JobCore

/// The API's routes, matched from a method and a path.
enum Route: Equatable {
    case health
    case ready
    case metrics
    case submitJob
    case listJobs
    case getJob(id: String)
    case cancelJob(id: String)
    case listDeliveries(id: String)
    case redeliver(id: String)

    /// A stable name for logs and metrics, without IDs in it.
    var name: String {
        switch self {
        case .health: return "/healthz"
        case .ready: return "/readyz"
        case .metrics: return "/metrics"
        case .submitJob, .listJobs: return "/v1/jobs"
        case .getJob: return "/v1/jobs/{id}"
        case .cancelJob: return "/v1/jobs/{id}/cancel"
        case .listDeliveries: return "/v1/jobs/{id}/deliveries"
        case .redeliver: return "/v1/jobs/{id}/deliveries/redeliver"
        }
    }
}

/// Matches requests to routes. A known path with an unsupported method is a 405 with `Allow`;
/// anything else unknown is a 404.
enum Router {
    static func route(method: HTTPMethod?, path: String) throws(Problem) -> Route {
        let segments = path.split(separator: "/", omittingEmptySubsequences: true)
        let methodName = method?.rawValue ?? "this method"
        func require(_ allowed: [HTTPMethod], _ route: Route) throws(Problem) -> Route {
            // HEAD is served wherever GET is; evhttp drops the body.
            if let method, allowed.contains(method) || (method == .head && allowed.contains(.get)) { return route }
            throw Problem.methodNotAllowed(methodName, path: path, allowed: allowed.map(\.rawValue))
        }
        switch segments.count {
        case 1 where segments[0] == "healthz":
            return try require([.get], .health)
        case 1 where segments[0] == "readyz":
            return try require([.get], .ready)
        case 1 where segments[0] == "metrics":
            return try require([.get], .metrics)
        case 2 where segments[0] == "v1" && segments[1] == "jobs":
            if method == .post { return .submitJob }
            return try require([.get, .post], .listJobs)
        case 3 where segments[0] == "v1" && segments[1] == "jobs":
            return try require([.get], .getJob(id: String(segments[2])))
        case 4 where segments[0] == "v1" && segments[1] == "jobs" && segments[3] == "cancel":
            return try require([.post], .cancelJob(id: String(segments[2])))
        case 4 where segments[0] == "v1" && segments[1] == "jobs" && segments[3] == "deliveries":
            return try require([.get], .listDeliveries(id: String(segments[2])))
        case 5 where segments[0] == "v1" && segments[1] == "jobs" && segments[3] == "deliveries" && segments[4] == "redeliver":
            return try require([.post], .redeliver(id: String(segments[2])))
        default:
            throw Problem.notFound(path: String(path.prefix(200)))
        }
    }
}
