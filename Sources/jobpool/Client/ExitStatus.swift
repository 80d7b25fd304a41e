/// The client commands' exit codes, for scripts to test. `serve` keeps 2 for "cannot start".
enum ExitStatus: Int32, Sendable {
    /// `submit --wait` and `wait`: the job succeeded. Every other command: the request did.
    case success = 0
    /// `submit --wait` and `wait`: the job failed.
    case jobFailed = 1
    /// `submit --wait` and `wait`: the job was cancelled.
    case jobCancelled = 3
    /// `submit --wait` and `wait`: the wait ended before the job finished.
    case timedOut = 4
    /// The job (or path) does not exist: a 404.
    case notFound = 5
    /// The server refused the request: any other 4xx (a bad input, a wrong API key, ...).
    case refused = 6
    /// The server could not be reached, or answered with a 5xx.
    case unavailable = 7
    /// A usage error; ArgumentParser's own code for a bad flag.
    case usage = 64

    /// The exit code that ends `submit --wait` and `wait` for a job in `status`, or nil while
    /// the job has not finished.
    static func finished(_ status: String?) -> ExitStatus? {
        switch status {
        case "succeeded": return .success
        case "failed": return .jobFailed
        case "cancelled": return .jobCancelled
        default: return nil
        }
    }

    /// The table that `--help` shows, as in the README.
    static let help = """
        Exit codes:
          0   success; for submit --wait and wait, the job succeeded
          1   the job failed (submit --wait, wait)
          3   the job was cancelled (submit --wait, wait)
          4   the wait ended before the job finished (submit --wait, wait)
          5   not found
          6   the server refused the request (another 4xx)
          7   cannot connect, or a 5xx
          64  usage error
        """
}

/// Why a client command stopped: a message for standard error and the exit code.
struct ClientError: Error {
    var status: ExitStatus
    /// One or more lines, without the `jobpool: ` prefix.
    var message: String
}
