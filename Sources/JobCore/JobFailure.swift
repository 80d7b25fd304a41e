/// Why a job failed: a stable machine-readable `code` and a `message` a person can act on.
/// This is what the job's `error` field shows.
public struct JobFailure: Error, Sendable, Hashable, Codable {
    public var code: String
    public var message: String

    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }

    /// The job was cancelled by a client.
    public static let cancelled = JobFailure(code: "cancelled", message: "The job was cancelled by request.")
    /// The server stopped before the job could finish.
    public static let interrupted = JobFailure(
        code: "interrupted",
        message: "The server shut down before the job finished; submit it again.")
}
