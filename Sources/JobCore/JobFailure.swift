/// Why a job failed: a stable machine-readable `code` and a `message` a person can act on.
/// This is what the job's `error` field shows.
public struct JobFailure: Error, Sendable, Hashable {
    public var code: String
    public var message: String
    /// The HTTP status a fetch target answered, for code `http_status`.
    public var status: Int?
    /// True when running the job again may well succeed (a timeout, a refused connection, a
    /// 5xx the job opted to retry). Only these failures spend further attempts.
    public var isRetryable: Bool

    public init(code: String, message: String, status: Int? = nil, isRetryable: Bool = false) {
        self.code = code
        self.message = message
        self.status = status
        self.isRetryable = isRetryable
    }

    /// The job was cancelled by a client.
    public static let cancelled = JobFailure(code: "cancelled", message: "The job was cancelled by request.")
    /// The server stopped before the job could finish.
    public static let interrupted = JobFailure(
        code: "interrupted",
        message: "The server shut down before the job finished; submit it again.")

    /// The job ran past its `time_limit_seconds`. Never retried.
    public static func timeLimit(seconds: Double) -> JobFailure {
        JobFailure(code: "time_limit",
                   message: "The job ran longer than its time_limit_seconds (\(seconds.plainText) s) and was stopped. Raise time_limit_seconds if the work needs longer.")
    }

    /// Every `error.code` a job can end with, for the API's contract.
    public static let vocabulary = [
        "dns", "connect", "timeout", "tls", "too_large", "blocked_address", "too_many_redirects", "protocol",
        "http_status", "interrupted", "time_limit", "cancelled", "unknown_kind",
        // Written by a shared store's rescue, when the node running the job died on its last attempt.
        "node_lost",
    ]
}
