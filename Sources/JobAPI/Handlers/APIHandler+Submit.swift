import EventHTTP
import Foundation
import JobCore
import OutboundHTTP
import Webhooks

extension APIHandler {
    private static let submitFields: Set<String> = ["kind", "input", "webhook", "max_attempts"]

    /// `POST /v1/jobs`: 202 with the queued job, or with `Prefer: wait=N` a 200 with the
    /// finished job if it finishes in time (the seed's `submit(...).result()`).
    func submitJob(_ request: HTTPRequest, owner: String?) throws(Problem) {
        guard !isDraining else { throw Problem.shuttingDown }
        guard request.bodyLength <= configuration.maxBodyBytes else {
            throw Problem.bodyTooLarge(limit: configuration.maxBodyBytes)
        }
        let submission = try parseSubmission(request.readBody())
        let webhook = try submission.webhook.map { spec throws(Problem) in try parseWebhook(spec) }
        let wait = PreferHeader.wait(in: request.header("Prefer"), limit: configuration.maxWaitSeconds)
        // Refuse before creating anything, so a 503 never hides an accepted job.
        if let wait, wait > 0, waiters.isFull { throw Problem.tooManyWaiters(limit: waiters.limit) }

        // The reply waits until the job is durable; with a durable store that is on the store's
        // writer thread, which hands the reply back to this loop.
        let pending = LoopBound((handler: self, request: request), on: loop)
        let loop = self.loop
        let accepted: Job?
        do throws(SubmitError) {
            accepted = try executor.submit(
                kind: submission.kind, input: submission.input, webhook: webhook?.target,
                maxAttempts: submission.maxAttempts, owner: owner
            ) { result in
                loop.execute {
                    let (handler, request) = pending.value
                    switch result {
                    case .success(let job): handler.acknowledge(request, job: job, wait: wait, secret: webhook?.generatedSecret)
                    case .failure(let error): handler.respond(request, problem: Self.problem(for: error))
                    }
                }
            }
        } catch {
            throw Self.problem(for: error)
        }
        if let accepted { acknowledge(request, job: accepted, wait: wait, secret: webhook?.generatedSecret) }
    }

    /// Answers a submission whose job is durable: 202 now, or with `Prefer: wait` once it
    /// finishes (200) or the wait runs out (202).
    private func acknowledge(_ request: HTTPRequest, job: Job, wait: Int?, secret: String?) {
        let location = ("Location", "/v1/jobs/\(job.id)")
        // A secret the server generated is shown in this reply only.
        guard let wait, wait > 0, !isDraining else {
            respond(request, status: 202, headers: [location]) { $0.job(job.snapshot(), revealingSecret: secret) }
            return
        }
        let applied = ("Preference-Applied", "wait=\(wait)")
        waiters.park(request, on: job, timeout: .seconds(wait)) { [unowned self] request, snapshot, finished in
            let (status, headers) = finished ? (200, [location, applied]) : (202, [location, ("Retry-After", "1")])
            respond(request, status: status, headers: headers) { $0.job(snapshot, revealingSecret: secret) }
        }
    }

    private struct Submission {
        var kind: String
        var input: JSONValue
        var webhook: JSONValue?
        var maxAttempts: Int
    }

    /// Reads `{"kind": ..., "input": {...}}`, naming the first bad field.
    private func parseSubmission(_ body: [UInt8]) throws(Problem) -> Submission {
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
                                       "Unknown field '\(unknown)'. A job is {\"kind\": string, \"input\": object, \"webhook\"?: {\"url\", \"secret\"?}, \"max_attempts\"?: 1-10}.")
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
        var maxAttempts = 3
        if let value = members["max_attempts"], value != .null {
            guard case .integer(let number) = value, (1...10).contains(number) else {
                throw Problem.invalidField(pointer: "/max_attempts", "'max_attempts' must be a whole number from 1 to 10 (default 3).")
            }
            maxAttempts = number
        }
        return Submission(kind: kind, input: input, webhook: members["webhook"].flatMap { $0 == .null ? nil : $0 },
                          maxAttempts: maxAttempts)
    }

    /// A webhook to register: its target, and the secret if the server generated it.
    struct WebhookRegistration {
        var target: WebhookTarget
        var generatedSecret: String?
    }

    /// Reads `{"url": ..., "secret"?: "whsec_..."}`, refusing what could never be delivered.
    private func parseWebhook(_ spec: JSONValue) throws(Problem) -> WebhookRegistration {
        guard let members = spec.objectValue else {
            throw Problem.invalidField(pointer: "/webhook", "'webhook' must be an object: {\"url\": \"https://...\", \"secret\"?: \"whsec_...\"}.")
        }
        if let unknown = members.keys.sorted().first(where: { $0 != "url" && $0 != "secret" }) {
            throw Problem.invalidField(pointer: "/webhook/\(unknown)", "Unknown field '\(unknown)'. A webhook has 'url' and an optional 'secret'.")
        }
        guard let url = members["url"]?.stringValue, url.utf8.count <= 2048, OutboundURL(url) != nil else {
            throw Problem.invalidField(pointer: "/webhook/url",
                                       "'webhook.url' must be an absolute http or https URL of at most 2048 bytes, such as https://example.com/hooks/jobpool.")
        }
        if let refusal = outbound.literalHostRefusal(url) {
            throw Problem.invalidField(pointer: "/webhook/url",
                                       "'webhook.url' points at \(refusal.address), a \(refusal.rangeName) address, which jobpool does not call by default. To allow it, \(AddressPolicy.advice(for: refusal)).")
        }
        switch members["secret"] {
        case nil, .null?:
            if let (_, key) = webhookDefaultSecret { return WebhookRegistration(target: WebhookTarget(url: url, key: key)) }
            let generated = WebhookSecret.generate()
            return WebhookRegistration(target: WebhookTarget(url: url, key: generated.key), generatedSecret: generated.text)
        case .string(let text)?:
            do throws(WebhookSecret.Invalid) {
                return WebhookRegistration(target: WebhookTarget(url: url, key: try WebhookSecret.key(from: text)))
            } catch {
                throw Problem.invalidField(pointer: "/webhook/secret", error.message)
            }
        case let other?:
            throw Problem.invalidField(pointer: "/webhook/secret", "'webhook.secret' must be a string, not \(other.typeName).")
        }
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
        case .storeUnavailable(let message):
            return Problem("store-unavailable", title: "Job store unavailable", status: 503,
                           detail: "The job could not be stored, so it was not accepted: \(message). Nothing was created; retry after the Retry-After delay.",
                           headers: [("Retry-After", "5")])
        }
    }
}
