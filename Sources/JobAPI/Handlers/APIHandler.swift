import EventHTTP
import Foundation
import JobCore
import Logging
import OutboundHTTP
import Prometheus
import Webhooks

/// Answers every HTTP request on the loop thread: routes it, maps it onto the
/// ``JobExecutor``, and writes JSON or problem+json. It never blocks: waits are parked in
/// ``WaiterTable``, and jobs run on the executor's workers.
final class APIHandler {
    let loop: EventLoop
    let executor: JobExecutor
    let webhooks: WebhookDeliverer
    let outbound: OutboundHTTPClient
    let configuration: APIConfiguration
    /// Used for webhooks registered without a secret, if the operator set one.
    let webhookDefaultSecret: (text: String, key: [UInt8])?
    let logger: Logger
    let waiters: WaiterTable
    let eventStreams: EventStreams
    /// `GET /v1/events`: every job change, to every stream that may see it.
    let eventHub: EventHub
    /// Idempotency keys whose first request has not been answered yet (those get 409).
    var idempotencyInFlight = Set<IdempotencyScope>()
    let metricsRegistry: PrometheusCollectorRegistry
    let access: AccessControl
    /// Nil when the log level is above `info`, so that nothing is even queued.
    let accessLog: AccessLog?
    /// Request counters and timers, looked up here on the loop thread without a lock.
    private lazy var httpMetrics = HTTPMetrics(metrics: executor.metrics)
    /// Set once a drain starts: submissions are refused, new waits answer at once.
    private(set) var isDraining = false

    init(loop: EventLoop, executor: JobExecutor, webhooks: WebhookDeliverer, outbound: OutboundHTTPClient,
         configuration: APIConfiguration, webhookDefaultSecret: String?, waiterGauge: WaiterGauge,
         metricsRegistry: PrometheusCollectorRegistry, access: AccessControl, accessLog: AccessLog?, logger: Logger) {
        self.metricsRegistry = metricsRegistry
        self.accessLog = accessLog
        self.access = access
        self.loop = loop
        self.executor = executor
        self.webhooks = webhooks
        self.outbound = outbound
        // The executable validates the secret at start; an invalid one here is ignored.
        self.webhookDefaultSecret = webhookDefaultSecret.flatMap { text in
            (try? WebhookSecret.key(from: text)).map { (text, $0) }
        }
        self.configuration = configuration
        self.logger = logger
        self.waiters = WaiterTable(loop: loop, limit: configuration.maxWaiters, gauge: waiterGauge)
        self.eventStreams = EventStreams(loop: loop, limit: configuration.maxWaiters)
        self.eventHub = EventHub(loop: loop, feed: executor.changes, configuration: configuration)
        eventHub.start()
    }

    func handle(_ request: HTTPRequest) {
        let requestID = RequestID.accept(request.header("X-Request-Id"))
        request.responseHeaders.append(("X-Request-Id", requestID))
        if Self.isDashboardPath(request.path) {
            observe(request, route: "/ui/", requestID: requestID)
            return serveDashboard(request)
        }
        let matched = Result { () throws(Problem) in try Router.route(method: request.method, path: request.path) }
        observe(request, route: (try? matched.get())?.template ?? "unmatched", requestID: requestID)
        do throws(Problem) {
            let route = try matched.get().route
            try checkBrowserSafety(request)
            switch route {
            case .health: respond(request, status: 200) { $0.object { $0.member("status") { $0.string("ok") } } }
            case .ready: try ready(request)
            case .openAPI: serveOpenAPI(request)
            case .metrics:
                switch access.verifyMetrics(request.header("Authorization")) {
                case .allowed: serveMetrics(request)
                case .missing: throw Self.unauthorized(missing: true)
                case .invalid: throw Self.unauthorized(missing: false)
                case .closed: throw Self.metricsClosed
                }
            default:
                let owner = try authorize(request)
                switch route {
                case .submitJob: try submitJob(request, owner: owner)
                case .submitBatch: try submitBatch(request, owner: owner)
                case .listJobs: try listJobs(request, owner: owner)
                case .stats: stats(request, owner: owner)
                case .getJob(let id): try getJob(request, id: id, owner: owner)
                case .jobEvents(let id): try streamEvents(request, id: id, owner: owner)
                case .events: try streamAllEvents(request, owner: owner)
                case .cancelJob(let id): try cancelJob(request, id: id, owner: owner)
                case .listDeliveries(let id): try listDeliveries(request, id: id, owner: owner)
                case .redeliver(let id): try redeliver(request, id: id, owner: owner)
                case .health, .ready, .metrics, .openAPI: break
                }
            }
        } catch {
            respond(request, problem: error)
        }
    }

    /// Refuses a cross-origin browser request with an unsafe method (403), and a body declared
    /// as anything but JSON (415), before any route looks at it.
    private func checkBrowserSafety(_ request: HTTPRequest) throws(Problem) {
        // Safe methods pass both checks: skip the header lookups that GETs would pay for nothing.
        switch request.method {
        case .get, .head, .options: return
        default: break
        }
        if let problem = CrossOriginProtection.problem(method: request.method?.rawValue, secFetchSite: request.header("Sec-Fetch-Site"),
                                                       origin: request.header("Origin"), host: request.header("Host")) {
            throw problem
        }
        if let problem = JSONMediaType.problem(contentType: request.header("Content-Type"), bodyLength: request.bodyLength) {
            throw problem
        }
    }

    /// Counts the request and times it when its reply goes out (a waiting request's later), and
    /// writes its access-log line.
    private func observe(_ request: HTTPRequest, route: String, requestID: String) {
        let started = ContinuousClock.now
        let method = request.method?.rawValue ?? "other"
        request.onResponse = { [unowned self] status in
            let elapsed = ContinuousClock.now - started
            httpMetrics.record(route: route, method: method, status: status, elapsed: elapsed)
            accessLog?.record(AccessLog.Entry(requestID: requestID, method: method, route: route, status: status, elapsed: elapsed,
                                              time: Date()))
        }
    }

    /// `GET /metrics`: the Prometheus text format.
    private func serveMetrics(_ request: HTTPRequest) {
        let statistics = executor.statistics
        executor.metrics.gauge("jobpool_queue_depth").record(statistics.queued)
        executor.metrics.gauge("jobpool_workers_busy").record(statistics.running)
        executor.metrics.gauge("jobpool_workers").record(statistics.workers)
        executor.metrics.gauge("jobpool_requests_waiting").record(waiters.count)
        if let cluster = executor.cluster {
            executor.metrics.gauge("jobpool_nodes").record(cluster.liveNodes)
            executor.metrics.gauge("jobpool_node_info", [("node", cluster.nodeID)]).record(1)
        }
        request.respond(status: 200, headers: [("Content-Type", "text/plain; version=0.0.4; charset=utf-8")],
                        body: metricsRegistry.emitToBuffer())
    }

    /// `GET /readyz`: 200 while the store takes writes, the pool takes jobs and no drain has
    /// begun; otherwise 503 naming each reason, so a load balancer stops sending work.
    private func ready(_ request: HTTPRequest) throws(Problem) {
        var reasons: [String] = []
        if isDraining { reasons.append("the server is draining before it stops") }
        if !executor.isAccepting { reasons.append("the worker pool is not taking jobs") }
        if !executor.isStoreWritable { reasons.append("the job store cannot be written (disk full or read-only, or its database unreachable?)") }
        guard reasons.isEmpty else {
            throw Problem("not-ready", title: "Not ready", status: 503, detail: "Not ready: " + reasons.joined(separator: "; ") + ".",
                          headers: [("Retry-After", "5")])
        }
        respond(request, status: 200) { $0.object { $0.member("status") { $0.string("ready") } } }
    }

    /// Starts a drain: new submissions get 503 and new waits are answered at once. Requests
    /// already parked keep waiting for their jobs, which the pool lets finish within the grace
    /// period; event streams close, since their clients can resume on the next process.
    func beginDrain() {
        isDraining = true
        eventStreams.closeAll()
    }

    /// Ends a drain: the requests still parked are answered with their jobs as they stand.
    func finishDrain() {
        isDraining = true
        waiters.completeAll()
        eventStreams.closeAll()
        eventHub.closeAll()
    }

    // MARK: - Replies

    /// Writes a JSON reply with `body`.
    func respond(_ request: HTTPRequest, status: Int, headers: [(name: String, value: String)] = [],
                 _ body: (inout JSONWriter) -> Void) {
        var writer = JSONWriter()
        body(&writer)
        request.respond(status: status, headers: [("Content-Type", "application/json")] + headers, body: writer.bytes)
    }

    func respond(_ request: HTTPRequest, problem: Problem) {
        var problem = problem
        problem.instance = String(request.path.prefix(200))
        var writer = JSONWriter()
        writer.problem(problem)
        request.respond(status: problem.status,
                        headers: [("Content-Type", "application/problem+json")] + problem.headers,
                        body: writer.bytes)
    }

    func respond(_ request: HTTPRequest, status: Int, job: JobSnapshot, headers: [(name: String, value: String)] = []) {
        respond(request, status: status, headers: headers) { $0.job(job) }
    }

    /// Replies with `job` as it stands now, reusing its cached JSON when the job has not changed
    /// since it was last rendered (a finished job never changes).
    ///
    /// The ETag is a digest of the bytes sent, so it names the representation itself: the same
    /// after the job has left the memory cache and been read back from the store, and after a
    /// restart, and different whenever anything shown changes.
    func respond(_ request: HTTPRequest, status: Int, current job: Job, headers: [(name: String, value: String)] = [],
                 conditional: Bool = false) {
        let snapshot = job.snapshot()
        let rendering: (bytes: [UInt8], digest: String)
        if let cached = job.cachedRendering(forVersion: snapshot.version) {
            rendering = cached
        } else {
            var writer = JSONWriter()
            writer.job(snapshot)
            rendering = (writer.bytes, Self.digest(writer.bytes))
            job.storeRendering(rendering.bytes, digest: rendering.digest, forVersion: snapshot.version)
        }
        var headers = headers
        if conditional {
            let etag = "\"\(rendering.digest)\""
            headers.append(("ETag", etag))
            if let ifNoneMatch = request.header("If-None-Match"),
               ifNoneMatch == "*" || ifNoneMatch.split(separator: ",").contains(where: {
                   $0.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "W/", with: "") == etag
               }) {
                request.respond(status: 304, headers: headers)
                return
            }
        }
        request.respond(status: status, headers: [("Content-Type", "application/json")] + headers, body: rendering.bytes)
    }

    /// 64-bit FNV-1a of the bytes, in hex: cheap, and collisions between two states of one job
    /// are as good as impossible.
    static func digest(_ bytes: [UInt8]) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01b3
        }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// The tenant of an authorized request, nil when access control is off, or a 401 problem.
    private func authorize(_ request: HTTPRequest) throws(Problem) -> String? {
        guard access.isEnabled else { return nil }
        switch access.verify(request.header("Authorization")) {
        case .tenant(let owner): return owner
        case .missing: throw Self.unauthorized(missing: true)
        case .invalid: throw Self.unauthorized(missing: false)
        }
    }

    private static let metricsClosed = Problem(
        "metrics-closed", title: "Metrics need a metrics key", status: 403,
        detail: "This server has API keys, and /metrics shows every tenant's job counts, so it is closed until the operator sets a key for it: start jobpool with --metrics-api-key KEY (JOBPOOL_METRICS_API_KEY) and send 'Authorization: Bearer KEY', or with --public-metrics to open it on purpose.")

    private static func unauthorized(missing: Bool) -> Problem {
        Problem("unauthorized", title: "Unauthorized", status: 401,
                detail: missing
                    ? "This server requires an API key. Send it as 'Authorization: Bearer <key>'."
                    : "The API key is not valid. Check the key you send as 'Authorization: Bearer <key>'.",
                headers: [("WWW-Authenticate", "Bearer realm=\"jobpool\"")])
    }
}
