import Foundation

/// An RFC 9457 problem detail: every error a client sees is one of these, as
/// `application/problem+json`, with a `detail` that says what to change.
struct Problem: Error {
    /// One invalid field or parameter.
    struct FieldError: Equatable {
        /// A JSON pointer into the request body (RFC 6901), for body fields.
        var pointer: String?
        /// The query parameter's name, for query parameters.
        var parameter: String?
        /// The header's name, for request headers.
        var header: String?
        /// The item's index in a batch.
        var index: Int?
        var detail: String
    }

    var type: String
    var title: String
    var status: Int
    var detail: String
    var instance: String?
    var errors: [FieldError]?
    /// Extra headers the reply carries, such as `Allow` or `Retry-After`.
    var headers: [(name: String, value: String)] = []

    init(_ slug: String, title: String, status: Int, detail: String,
         errors: [FieldError]? = nil, headers: [(name: String, value: String)] = []) {
        self.type = "urn:jobpool:problem:\(slug)"
        self.title = title
        self.status = status
        self.detail = detail
        self.errors = errors
        self.headers = headers
    }
}

extension Problem {
    /// Moves body pointers under `prefix` (a batch item's `/jobs/3`).
    mutating func prefixPointers(with prefix: String) {
        guard !prefix.isEmpty, let fields = errors else { return }
        errors = fields.map { field in
            var field = field
            field.pointer = field.pointer.map { prefix + $0 }
            return field
        }
    }

    static let idempotencyKeyInFlight = Problem(
        "idempotency-key-in-flight", title: "Request with this Idempotency-Key in progress", status: 409,
        detail: "A request with this Idempotency-Key is still being processed. Retry after the Retry-After delay to get its job.",
        headers: [("Retry-After", "1")])

    static let idempotencyKeyReused = Problem(
        "idempotency-key-reused", title: "Idempotency-Key reused with a different request", status: 422,
        detail: "This Idempotency-Key was already used with a different request body. Use a new key for a new job, or resend the original body unchanged.")

    static func malformedJSON(_ reason: String) -> Problem {
        Problem("malformed-json", title: "Request body is not valid JSON", status: 400,
                detail: "The request body could not be parsed as JSON: \(reason). Send a JSON object such as {\"kind\": \"write_code\", \"input\": {\"name\": \"alex\"}}.")
    }

    static func invalidField(pointer: String, _ detail: String) -> Problem {
        Problem("invalid-input", title: "Invalid request field", status: 422, detail: detail,
                errors: [FieldError(pointer: pointer, detail: detail)])
    }

    static func invalidParameter(_ name: String, _ detail: String) -> Problem {
        Problem("invalid-parameter", title: "Invalid query parameter", status: 400, detail: detail,
                errors: [FieldError(parameter: name, detail: detail)])
    }

    static func notFound(path: String) -> Problem {
        Problem("not-found", title: "Not found", status: 404,
                detail: "There is no resource at \(path). The API lives under /v1/jobs.")
    }

    /// The store could not be read or written now; `detail` says what was not done.
    static func storeUnavailable(_ detail: String) -> Problem {
        Problem("store-unavailable", title: "Job store unavailable", status: 503, detail: detail, headers: [("Retry-After", "5")])
    }

    /// The store could not answer a read (a damaged file, an I/O error): nothing changed.
    static func storeReadFailed(_ message: String) -> Problem {
        storeUnavailable("The job store could not be read: \(message). Nothing was changed; retry after the Retry-After delay.")
    }

    static func jobNotFound(_ id: String) -> Problem {
        Problem("job-not-found", title: "Job not found", status: 404,
                detail: "No job has the ID '\(id)'. Job IDs are the UUIDs returned by POST /v1/jobs.")
    }

    static func methodNotAllowed(_ method: String, path: String, allowed: [String]) -> Problem {
        Problem("method-not-allowed", title: "Method not allowed", status: 405,
                detail: "\(path) does not support \(method). Use \(allowed.joined(separator: " or ")).",
                headers: [("Allow", allowed.joined(separator: ", "))])
    }

    static func bodyTooLarge(limit: Int) -> Problem {
        Problem("body-too-large", title: "Request body too large", status: 413,
                detail: "The request body is larger than the limit of \(limit) bytes. Send a smaller job input.")
    }

    static func queueFull(limit: Int) -> Problem {
        Problem("queue-full", title: "Job queue is full", status: 429,
                detail: "The queue already holds \(limit) jobs waiting for a worker. Retry after the Retry-After delay.",
                headers: [("Retry-After", "1")])
    }

    static func tenantQueueFull(limit: Int) -> Problem {
        Problem("tenant-queue-full", title: "Your share of the job queue is full", status: 429,
                detail: "With this submission, your API key would have more than \(limit) jobs waiting for a worker, its limit (--max-queued-per-tenant); other tenants' jobs are not affected. Retry after the Retry-After delay, once some of yours have started; a batch of more than \(limit) jobs never fits, so split it.",
                headers: [("Retry-After", "1")])
    }

    static let shuttingDown = Problem(
        "shutting-down", title: "Server is shutting down", status: 503,
        detail: "This server is draining before it stops and takes no new jobs. Retry shortly; another instance or the restarted one will take it.",
        headers: [("Retry-After", "5")])

    static func tooManyWaiters(limit: Int) -> Problem {
        Problem("too-many-waiters", title: "Too many waiting requests", status: 503,
                detail: "\(limit) requests are already waiting for jobs to finish. Retry later, or poll without waiting.",
                headers: [("Retry-After", "1")])
    }
}
