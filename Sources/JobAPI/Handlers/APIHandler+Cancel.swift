import EventHTTP
import JobCore

extension APIHandler {
    /// `POST /v1/jobs/{id}/cancel`: a queued job is cancelled at once; a running one is asked to
    /// stop and the reply waits (briefly) until it has; a finished one is a 409.
    func cancelJob(_ request: HTTPRequest, id: String, owner: String?) throws(Problem) {
        try withJob(request, id: id, owner: owner) { handler, request, job throws(Problem) in
            try handler.cancel(job, request: request)
        }
    }

    private func cancel(_ job: Job, request: HTTPRequest) throws(Problem) {
        switch executor.cancel(job) {
        case .cancelled:
            respond(request, status: 200, job: job.snapshot())
        case .alreadyFinished(let state):
            throw Problem("job-finished", title: "Job already finished", status: 409,
                          detail: "Job \(job.id) already finished as '\(state.rawValue)' and cannot be cancelled.")
        case .stopping:
            guard !waiters.isFull, !isDraining else {
                respond(request, status: 202, job: job.snapshot())
                return
            }
            waiters.park(request, on: job, timeout: configuration.cancelWait) { [unowned self] request, snapshot, finished in
                respond(request, status: finished ? 200 : 202, job: snapshot)
            }
        }
    }
}
