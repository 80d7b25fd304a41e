import EventHTTP
import Foundation
import JobCore
import Logging

/// Answers every HTTP request on the loop thread: routes it, maps it onto the
/// ``JobExecutor``, and writes JSON or problem+json. It never blocks: waits are parked in
/// ``WaiterTable``, and jobs run on the executor's workers.
final class APIHandler {
    let loop: EventLoop
    let executor: JobExecutor
    let configuration: APIConfiguration
    let logger: Logger
    let waiters: WaiterTable
    /// Set once a drain starts: submissions are refused, waits answer at once.
    private(set) var isDraining = false
    private let encoder = JSONEncoder()
    let decoder = JSONDecoder()

    init(loop: EventLoop, executor: JobExecutor, configuration: APIConfiguration, logger: Logger) {
        self.loop = loop
        self.executor = executor
        self.configuration = configuration
        self.logger = logger
        self.waiters = WaiterTable(loop: loop, limit: configuration.maxWaiters)
        encoder.outputFormatting = [.withoutEscapingSlashes, .sortedKeys]
    }

    func handle(_ request: HTTPRequest) {
        do throws(Problem) {
            switch try Router.route(method: request.method, path: request.path) {
            case .health: respond(request, status: 200, json: ["status": "ok"])
            case .submitJob: try submitJob(request)
            case .listJobs: try listJobs(request)
            case .getJob(let id): try getJob(request, id: id)
            case .cancelJob(let id): try cancelJob(request, id: id)
            }
        } catch {
            respond(request, problem: error)
        }
    }

    /// Starts a drain: new submissions get 503, and parked requests are answered now.
    func beginDrain() {
        isDraining = true
        waiters.completeAll()
    }

    // MARK: - Replies

    func respond(_ request: HTTPRequest, status: Int, json value: some Encodable,
                 headers: [(name: String, value: String)] = []) {
        do {
            let body = try encoder.encode(value)
            request.respond(status: status, headers: [("Content-Type", "application/json")] + headers, body: Array(body))
        } catch {
            logger.error("Could not encode a reply", metadata: ["error": "\(error)"])
            respond(request, problem: Problem("internal", title: "Internal error", status: 500,
                                              detail: "The server could not encode its reply. This is a bug; please report it."))
        }
    }

    func respond(_ request: HTTPRequest, problem: Problem) {
        var problem = problem
        problem.instance = String(request.path.prefix(200))
        let body = (try? encoder.encode(problem)) ?? Data(#"{"title":"Internal error","status":500}"#.utf8)
        request.respond(status: problem.status,
                        headers: [("Content-Type", "application/problem+json")] + problem.headers,
                        body: Array(body))
    }

    func respond(_ request: HTTPRequest, status: Int, job: JobSnapshot, headers: [(name: String, value: String)] = []) {
        respond(request, status: status, json: JobResource(job), headers: headers)
    }

    /// The job with this ID, or a 404 problem.
    func existingJob(_ id: String) throws(Problem) -> Job {
        guard let jobID = JobID(id), let job = executor.job(withID: jobID) else {
            throw Problem.jobNotFound(String(id.prefix(80)))
        }
        return job
    }
}
