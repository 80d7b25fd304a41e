import JobCore
import OutboundHTTP

/// The seed's crawler job: downloads a URL and reports its status and length.
///
/// Input: `{"url": "https://...", "timeout_seconds"?: 30, "max_bytes"?: 10485760,
/// "follow_redirects"?: true, "retry_on_status"?: [502, 503]}`. An HTTP error status (404, 500)
/// is a result: the fetch worked; unless it is listed in `retry_on_status`, which makes it a
/// retryable failure with code `http_status`. A transport failure fails the job with one of
/// the codes of ``OutboundFailure/code``; timeouts and connection errors are retryable.
public struct FetchURL: JobKind {
    public let name = "fetch_url"
    private static let fields: Set<String> = ["url", "timeout_seconds", "max_bytes", "follow_redirects", "retry_on_status"]
    private let client: OutboundHTTPClient
    private let metrics: JobMetrics

    /// Largest `max_bytes` a job may ask for: 100 MiB.
    public static let maxBytesLimit = 100 * 1024 * 1024

    public init(client: OutboundHTTPClient, metrics: JobMetrics = .none) {
        self.client = client
        self.metrics = metrics
    }

    public func makeWork(input: JSONValue) throws(InputError) -> JobWork {
        let reader = try InputReader(input)
        try reader.rejectUnknown(Self.fields)
        let url = try reader.requiredString("url", maxLength: 8192)
        guard OutboundURL(url) != nil else {
            throw InputError(pointer: reader.pointer("url"),
                             message: "'url' must be an absolute http or https URL, such as https://example.com/; got '\(url.prefix(100))'.")
        }
        let timeout = try reader.number("timeout_seconds", in: 0.001...300) ?? 30
        let maxBytes = try reader.integer("max_bytes", in: 1...Self.maxBytesLimit) ?? 10 * 1024 * 1024
        let followRedirects = try reader.bool("follow_redirects") ?? true
        let retryOnStatus = Set(try reader.integers("retry_on_status", in: 500...599, maxCount: 100) ?? [])
        let request = OutboundRequest(url: url, timeout: .milliseconds(Int64(timeout * 1000)),
                                      maxBytes: maxBytes, followRedirects: followRedirects)
        let bytesFetched = metrics.counter("jobpool_fetch_bytes_total", [])
        return { [client] context throws(JobFailure) in
            let abort = AbortHandle()
            context.onStop { _ in abort.abort() }
            switch client.perform(request, abort: abort) {
            case .success(let response) where retryOnStatus.contains(response.status):
                throw JobFailure(code: "http_status",
                                 message: "\(url.prefix(200)) answered HTTP \(response.status), which retry_on_status lists as worth retrying.",
                                 status: response.status, isRetryable: true)
            case .success(let response):
                bytesFetched.increment(by: Int64(response.length))
                return .object([
                    "url": .string(url),
                    "final_url": .string(response.finalURL),
                    "status": .integer(response.status),
                    "length": .integer(response.length),
                    "content_type": response.contentType.map(JSONValue.string) ?? .null,
                    "elapsed_ms": .integer(Int(response.elapsed.clampedMilliseconds)),
                    "redirects": .integer(response.redirects),
                ])
            case .failure(.aborted):
                throw context.stopReason?.failure ?? JobFailure.interrupted
            case .failure(let failure):
                throw JobFailure(code: failure.code, message: failure.message, isRetryable: failure.isTransient)
            }
        }
    }
}
