import EventHTTP
import Foundation
import JobCore
import OutboundHTTP
import Webhooks

/// Reading one job spec out of a request body: `POST /v1/jobs` reads one at the top level,
/// `POST /v1/jobs/batch` one per item of `jobs`, with pointers such as `/jobs/3/kind`.
extension APIHandler {
    private static let submitFields: Set<String> = [
        "kind", "input", "webhook", "max_attempts", "priority", "time_limit_seconds", "run_at", "delay_seconds",
    ]
    /// The furthest ahead a job may be scheduled: one year.
    static let maxScheduleAhead: TimeInterval = 366 * 86400

    /// A checked job spec, with the webhook secret if the server generated it.
    struct Submission {
        var prepared: PreparedJob
        var generatedSecret: String?
    }

    /// Reads and checks one spec at `prefix` (`""` for the top level), down to the kind's input.
    /// Throws a 422 problem naming the first bad field.
    func readSubmission(_ document: JSONValue, at prefix: String, owner: String?,
                        idempotency: IdempotencyRecord? = nil) throws(Problem) -> Submission {
        guard let members = document.objectValue else {
            throw Problem.invalidField(pointer: prefix, "A job must be a JSON object, not \(document.typeName).")
        }
        if let unknown = members.firstUnknownMember(Self.submitFields.contains) {
            throw Problem.invalidField(pointer: "\(prefix)/\(unknown)",
                                       "Unknown field '\(unknown.prefix(80))'. A job is {\"kind\": string, \"input\": object, \"webhook\"?: {\"url\", \"secret\"?}, \"max_attempts\"?: 1-10, \"priority\"?: -10..10, \"time_limit_seconds\"?, \"run_at\"? or \"delay_seconds\"?}.")
        }
        guard let kindValue = members["kind"] else {
            throw Problem.invalidField(pointer: "\(prefix)/kind", "'kind' is required. Known kinds: \(executor.kindNames.joined(separator: ", ")).")
        }
        guard let kind = kindValue.stringValue else {
            throw Problem.invalidField(pointer: "\(prefix)/kind", "'kind' must be a string, not \(kindValue.typeName).")
        }
        guard let input = members["input"] else {
            throw Problem.invalidField(pointer: "\(prefix)/input", "'input' is required: a JSON object with the job's arguments.")
        }
        var options = JobOptions(idempotency: idempotency)
        options.maxAttempts = try integer(members, "max_attempts", in: JobOptions.attemptRange, at: prefix,
                                          hint: "the attempts allowed in all, default 3") ?? 3
        options.priority = try integer(members, "priority", in: JobOptions.priorities, at: prefix,
                                       hint: "higher runs first, default 0") ?? 0
        if let value = members["time_limit_seconds"], value != .null {
            guard let seconds = value.doubleValue, JobOptions.timeLimitRange.contains(seconds) else {
                throw Problem.invalidField(pointer: "\(prefix)/time_limit_seconds",
                                           "'time_limit_seconds' must be a number of seconds from 0.001 to 86400.")
            }
            options.timeLimitSeconds = seconds
        }
        options.runAt = try runAt(members, at: prefix)
        let webhook = try members["webhook"].flatMap { $0 == .null ? nil : $0 }.map { spec throws(Problem) in
            try readWebhook(spec, at: "\(prefix)/webhook")
        }
        if var record = options.idempotency {
            record.webhookSecretGenerated = webhook?.generatedSecret != nil
            options.idempotency = record
        }
        let spec = JobSpec(kind: kind, input: input, webhook: webhook?.target, owner: owner, options: options)
        do throws(SubmitError) {
            return Submission(prepared: try executor.prepare(spec), generatedSecret: webhook?.generatedSecret)
        } catch {
            var problem = Self.problem(for: error)
            problem.prefixPointers(with: prefix)
            throw problem
        }
    }

    private func integer(_ members: [String: JSONValue], _ name: String, in range: ClosedRange<Int>, at prefix: String,
                         hint: String) throws(Problem) -> Int? {
        guard let value = members[name], value != .null else { return nil }
        guard case .integer(let number) = value, range.contains(number) else {
            throw Problem.invalidField(pointer: "\(prefix)/\(name)",
                                       "'\(name)' must be a whole number from \(range.lowerBound) to \(range.upperBound) (\(hint)).")
        }
        return number
    }

    /// `run_at` (RFC 3339) or `delay_seconds`, not both; nil when neither is given.
    private func runAt(_ members: [String: JSONValue], at prefix: String) throws(Problem) -> Date? {
        let runAt = members["run_at"].flatMap { $0 == .null ? nil : $0 }
        let delay = members["delay_seconds"].flatMap { $0 == .null ? nil : $0 }
        if runAt != nil, delay != nil {
            throw Problem.invalidField(pointer: "\(prefix)/delay_seconds", "Give either 'run_at' or 'delay_seconds', not both.")
        }
        if let delay {
            guard let seconds = delay.doubleValue, (0...Self.maxScheduleAhead).contains(seconds) else {
                throw Problem.invalidField(pointer: "\(prefix)/delay_seconds",
                                           "'delay_seconds' must be a number of seconds from 0 to \(Int(Self.maxScheduleAhead)) (one year).")
            }
            return Date().addingTimeInterval(seconds)
        }
        guard let runAt else { return nil }
        guard let text = runAt.stringValue, let date = RFC3339.date(text) else {
            throw Problem.invalidField(pointer: "\(prefix)/run_at",
                                       "'run_at' must be an RFC 3339 date-time with a time zone, such as 2026-12-01T09:30:00Z.")
        }
        guard date.timeIntervalSinceNow <= Self.maxScheduleAhead else {
            throw Problem.invalidField(pointer: "\(prefix)/run_at", "'run_at' may be at most one year ahead.")
        }
        return date // a time in the past runs the job now
    }

    /// A webhook to register: its target, and the secret if the server generated it.
    struct WebhookRegistration {
        var target: WebhookTarget
        var generatedSecret: String?
    }

    /// Reads `{"url": ..., "secret"?: "whsec_..."}`, refusing what could never be delivered.
    private func readWebhook(_ spec: JSONValue, at pointer: String) throws(Problem) -> WebhookRegistration {
        guard let members = spec.objectValue else {
            throw Problem.invalidField(pointer: pointer, "'webhook' must be an object: {\"url\": \"https://...\", \"secret\"?: \"whsec_...\"}.")
        }
        if let unknown = members.firstUnknownMember({ $0 == "url" || $0 == "secret" }) {
            throw Problem.invalidField(pointer: "\(pointer)/\(unknown)", "Unknown field '\(unknown.prefix(80))'. A webhook has 'url' and an optional 'secret'.")
        }
        guard let url = members["url"]?.stringValue, url.utf8.count <= 2048, OutboundURL(url) != nil else {
            throw Problem.invalidField(pointer: "\(pointer)/url",
                                       "'webhook.url' must be an absolute http or https URL of at most 2048 bytes, such as https://example.com/hooks/jobpool.")
        }
        if let refusal = outbound.literalHostRefusal(url) {
            throw Problem.invalidField(pointer: "\(pointer)/url",
                                       "'webhook.url' points at \(refusal.address), in the \(refusal.rangeName) range, which jobpool does not call by default. To allow it, \(AddressPolicy.advice(for: refusal)).")
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
                throw Problem.invalidField(pointer: "\(pointer)/secret", error.message)
            }
        case let other?:
            throw Problem.invalidField(pointer: "\(pointer)/secret", "'webhook.secret' must be a string, not \(other.typeName).")
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
        case .ownerQueueFull(let limit):
            return Problem.tenantQueueFull(limit: limit)
        case .shuttingDown:
            return Problem.shuttingDown
        case .idempotencyKeyTaken:
            // Only when the job that took the key could not be read back (see createJob).
            return Problem.idempotencyKeyInFlight
        case .storeUnavailable(let message):
            return Problem.storeUnavailable("The job could not be stored, so it was not accepted: \(message). Nothing was created; retry after the Retry-After delay.")
        }
    }
}
