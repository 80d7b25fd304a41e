/// Waiting for a job to finish, shared by `submit --wait` and `wait`.
extension JobpoolClient {
    /// The longest `?wait=` the server takes.
    static let longestWait = 60

    /// Long-polls `GET /v1/jobs/{id}?wait=N` until the job finishes or `deadline` passes (`nil`:
    /// no deadline), and returns the last answer. A job waiting to retry (`scheduled`) is not
    /// finished, so the polls go on through its retries.
    func waitForJob(_ id: String, until deadline: ContinuousClock.Instant?) throws -> Response {
        while true {
            let seconds = deadline.map { deadline in
                max(0, min(Self.longestWait, Int(((deadline - .now) / .seconds(1)).rounded(.up))))
            } ?? Self.longestWait
            let response = try send("GET", "/v1/jobs/\(Self.pathSegment(id))", query: [("wait", "\(seconds)")],
                                    timeout: .seconds(seconds + 30))
            if response.isFinished { return response }
            if let deadline, ContinuousClock.now >= deadline { return response }
        }
    }
}

extension JobpoolClient.Response {
    /// The job's `status`, for a job answer.
    var jobStatus: String? { object?["status"] as? String }

    var isFinished: Bool { ExitStatus.finished(jobStatus) != nil }

    /// Prints the job and returns the exit code of `submit --wait` and `wait`: by its final
    /// state, or ``ExitStatus/timedOut`` (with a note on standard error) if it has not finished.
    func finish(_ output: Output) -> ExitStatus {
        output.job(self)
        if let status = ExitStatus.finished(jobStatus) { return status }
        let id = object?["id"] as? String ?? "?"
        Output.error("job \(id) has not finished (it is \(jobStatus ?? "in an unknown state")); wait again with: jobpool wait \(id)")
        return .timedOut
    }
}
