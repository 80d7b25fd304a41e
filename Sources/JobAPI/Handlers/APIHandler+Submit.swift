import EventHTTP
import Foundation
import JobCore

extension APIHandler {
    private static let submitFields: Set<String> = ["kind", "input"]

    /// `POST /v1/jobs`: 202 with the queued job, or with `Prefer: wait=N` a 200 with the
    /// finished job if it finishes in time (the seed's `submit(...).result()`).
    func submitJob(_ request: HTTPRequest) throws(Problem) {
        guard !isDraining else { throw Problem.shuttingDown }
        guard request.bodyLength <= configuration.maxBodyBytes else {
            throw Problem.bodyTooLarge(limit: configuration.maxBodyBytes)
        }
        let (kind, input) = try parseSubmission(request.readBody())
        let wait = PreferHeader.wait(in: request.header("Prefer"), limit: configuration.maxWaitSeconds)
        // Refuse before creating anything, so a 503 never hides an accepted job.
        if let wait, wait > 0, waiters.isFull { throw Problem.tooManyWaiters(limit: waiters.limit) }

        let job: Job
        do throws(SubmitError) {
            job = try executor.submit(kind: kind, input: input)
        } catch {
            throw Self.problem(for: error)
        }
        let location = ("Location", "/v1/jobs/\(job.id)")
        guard let wait, wait > 0 else {
            respond(request, status: 202, job: job.snapshot(), headers: [location])
            return
        }
        let applied = ("Preference-Applied", "wait=\(wait)")
        waiters.park(request, on: job, timeout: .seconds(wait)) { [unowned self] request, snapshot, finished in
            if finished {
                respond(request, status: 200, job: snapshot, headers: [location, applied])
            } else {
                respond(request, status: 202, job: snapshot, headers: [location, ("Retry-After", "1")])
            }
        }
    }

    /// Reads `{"kind": ..., "input": {...}}`, naming the first bad field.
    private func parseSubmission(_ body: [UInt8]) throws(Problem) -> (kind: String, input: JSONValue) {
        let document: JSONValue
        do throws(JSONParser.Failure) {
            document = try JSONParser.parse(body)
        } catch {
            throw Problem.malformedJSON(error.description)
        }
        guard let members = document.objectValue else {
            throw Problem.invalidField(pointer: "", "The request body must be a JSON object, not \(document.typeName).")
        }
        if let unknown = members.keys.sorted().first(where: { !Self.submitFields.contains($0) }) {
            throw Problem.invalidField(pointer: "/\(unknown)",
                                       "Unknown field '\(unknown)'. A job is {\"kind\": string, \"input\": object}.")
        }
        guard let kindValue = members["kind"] else {
            throw Problem.invalidField(pointer: "/kind", "'kind' is required. Known kinds: \(executor.kindNames.joined(separator: ", ")).")
        }
        guard let kind = kindValue.stringValue else {
            throw Problem.invalidField(pointer: "/kind", "'kind' must be a string, not \(kindValue.typeName).")
        }
        guard let input = members["input"] else {
            throw Problem.invalidField(pointer: "/input", "'input' is required: a JSON object with the job's arguments.")
        }
        return (kind, input)
    }

    static func problem(for error: SubmitError) -> Problem {
        switch error {
        case .unknownKind(let kind, let known):
            return Problem.invalidField(
                pointer: "/kind",
                "Unknown kind '\(kind.prefix(80))'. Known kinds: \(known.joined(separator: ", ")).")
        case .invalidInput(let inputError):
            return Problem.invalidField(pointer: inputError.pointer, inputError.message)
        case .queueFull(let limit):
            return Problem.queueFull(limit: limit)
        case .shuttingDown:
            return Problem.shuttingDown
        }
    }
}
