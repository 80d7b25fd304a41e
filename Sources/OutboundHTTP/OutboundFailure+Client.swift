/// The same failures, worded for a person at a shell who named the server (`--url`), rather
/// than for the submitter of a fetch job (whose remedies are job fields such as
/// `timeout_seconds`).
extension OutboundFailure {
    /// What went wrong reaching `server`, and what to check.
    ///
    /// ```swift
    /// failure.clientMessage(server: "http://127.0.0.1:8080")
    /// // "cannot connect to jobpool at http://127.0.0.1:8080 (Connection refused). Is `jobpool serve` running there? ..."
    /// ```
    public func clientMessage(server: String) -> String {
        let advice = "Is `jobpool serve` running there? Name the server with --url or JOBPOOL_URL."
        switch self {
        case .dns(let detail): return "cannot resolve the host of \(server) (\(detail)). \(advice)"
        case .connect(let detail): return "cannot connect to jobpool at \(server) (\(detail)). \(advice)"
        case .timeout(let detail): return "jobpool at \(server) did not answer in time (\(detail))."
        case .tls(let detail): return "the TLS handshake with \(server) failed (\(detail))."
        case .tooLarge(let limit): return "the answer from \(server) is larger than \(limit) bytes; it was not read."
        case .blockedAddress(let refusal): return "refused to connect to \(refusal.address), in the \(refusal.rangeName) range."
        case .tooManyRedirects: return "\(server) answered with redirects; the client does not follow them. Check --url."
        case .protocolError(let detail): return "the HTTP exchange with \(server) failed (\(detail))."
        case .aborted: return "the request to \(server) was interrupted."
        }
    }
}
