import EventHTTP
import JobCore

extension APIHandler {
    /// `GET /v1/events`: one Server-Sent Events stream of every change to the jobs the caller
    /// may see, filtered by `kind` and `status` (each a comma-separated list), resumable with
    /// `Last-Event-ID` within the replay window. See ``EventHub``.
    func streamAllEvents(_ request: HTTPRequest, owner: String?) throws(Problem) {
        let query = QueryParameters(request.query)
        try query.requireOnly(["kind", "status"])
        var filter = EventFilter(owner: access.isEnabled ? .some(owner) : .none)
        if let text = query["kind"] {
            let kinds = Set(text.split(separator: ",").map(String.init))
            let known = executor.kindNames
            guard !kinds.isEmpty, kinds.isSubset(of: known) else {
                throw Problem.invalidParameter(
                    "kind", "'kind' must be one or more of \(known.joined(separator: ", ")), separated by commas; got '\(text.prefix(40))'.")
            }
            filter.kinds = kinds
        }
        if let text = query["status"] {
            let states = text.split(separator: ",").map { JobState(rawValue: String($0)) }
            guard !states.isEmpty, states.allSatisfy({ $0 != nil }) else {
                throw Problem.invalidParameter(
                    "status", "'status' must be one or more of \(JobState.allCases.map(\.rawValue).joined(separator: ", ")), separated by commas; got '\(text.prefix(40))'.")
            }
            filter.statuses = Set(states.compactMap { $0 })
        }
        let lastEventID = try Self.lastEventID(request)
        guard !isDraining else { throw Problem.shuttingDown }
        guard request.method != .head else {
            // HEAD sends no body, so there is no stream to hold open.
            request.respond(status: 200, headers: [("Content-Type", "text/event-stream"), ("Cache-Control", "no-store")])
            return
        }
        // Streams of either kind share one cap: each holds a connection that cannot be evicted.
        guard eventStreams.count + eventHub.count < eventStreams.limit else { throw Problem.tooManyWaiters(limit: eventStreams.limit) }
        eventHub.open(request, filter: filter, lastEventID: lastEventID)
    }

    /// The `Last-Event-ID` header as a whole number, nil when absent, or a 400 problem.
    static func lastEventID(_ request: HTTPRequest) throws(Problem) -> Int? {
        guard let header = request.header("Last-Event-ID") else { return nil }
        guard !header.isEmpty, header.count <= 18, header.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
              let number = Int(header) else {
            throw Problem("invalid-header", title: "Invalid header", status: 400,
                          detail: "'Last-Event-ID' must be the id of an event this stream sent (a whole number).",
                          errors: [Problem.FieldError(header: "Last-Event-ID", detail: "a whole number")])
        }
        return number
    }
}
