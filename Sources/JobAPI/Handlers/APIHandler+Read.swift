import EventHTTP
import JobCore

extension APIHandler {
    /// `GET /v1/jobs/{id}`, with `?wait=N` to long-poll until the job finishes.
    func getJob(_ request: HTTPRequest, id: String, owner: String?) throws(Problem) {
        // Other parameters are ignored here, unlike on the list: a cache-buster (`?_=123`) that
        // some clients add to a GET must not turn a poll into an error.
        let wait = try QueryParameters(request.query).integer("wait", in: 0...configuration.maxWaitSeconds) ?? 0
        try withJob(request, id: id, owner: owner) { handler, request, job throws(Problem) in
            try handler.answer(request, job: job, wait: wait)
        }
    }

    private func answer(_ request: HTTPRequest, job: Job, wait: Int) throws(Problem) {
        guard wait > 0, !job.isFinished, !isDraining else {
            respond(request, status: 200, current: job, conditional: true)
            return
        }
        guard !waiters.isFull else { throw Problem.tooManyWaiters(limit: waiters.limit) }
        waiters.park(request, on: job, timeout: .seconds(wait)) { [unowned self] request, snapshot, _ in
            respond(request, status: 200, job: snapshot)
        }
    }

    /// `GET /v1/jobs?status=&kind=&limit=&cursor=`: newest first, paged by an opaque cursor.
    func listJobs(_ request: HTTPRequest, owner: String?) throws(Problem) {
        let query = QueryParameters(request.query)
        try query.requireOnly(["status", "kind", "limit", "cursor"])
        var filter = JobFilter(owner: owner)
        if let status = query["status"] {
            guard let state = JobState(rawValue: status) else {
                throw Problem.invalidParameter(
                    "status", "'status' must be one of \(JobState.allCases.map(\.rawValue).joined(separator: ", ")); got '\(status.prefix(40))'.")
            }
            filter.status = state
        }
        if let kind = query["kind"] {
            guard executor.kindNames.contains(kind) else {
                throw Problem.invalidParameter(
                    "kind", "'kind' must be one of \(executor.kindNames.joined(separator: ", ")); got '\(kind.prefix(40))'.")
            }
            filter.kind = kind
        }
        let limit = try query.integer("limit", in: 1...500) ?? 50
        var cursor: JobCursor?
        if let text = query["cursor"] {
            guard let decoded = ListCursor.decode(text) else {
                throw Problem.invalidParameter(
                    "cursor", "'cursor' is not one this server issued. Use the next_cursor of a previous page, or omit it for the first page.")
            }
            cursor = decoded
        }
        readStore(request, { [filter, cursor] executor throws(StoreError) in
            try executor.list(filter: filter, limit: limit, after: cursor)
        }) { handler, request, page in
            handler.respond(request, status: 200) { $0.jobList(page) }
        }
    }
}
