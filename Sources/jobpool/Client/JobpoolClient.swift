import Foundation
import JobAPI
import OutboundHTTP

/// The public HTTP API as the client commands call it, over the one outbound client (libcurl).
/// Every answer that is not a 2xx becomes a ``ClientError`` with its exit code and the
/// server's problem+json, so a command only handles success.
///
/// ```swift
/// let client = JobpoolClient(server: "http://127.0.0.1:8080", apiKey: nil)
/// let job = try client.send("GET", "/v1/jobs/\(JobpoolClient.pathSegment(id))")
/// ```
struct JobpoolClient {
    /// An answer with a 2xx status.
    struct Response {
        var status: Int
        var body: [UInt8]
        /// The body as a JSON object, or nil if it is not one.
        var object: [String: Any]? {
            (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any]
        }
    }

    let server: String
    let apiKey: String?
    private let http = OutboundHTTPClient(configuration: .namedServer(userAgent: "jobpool-cli/\(JobpoolVersion.current)"))
    /// Large enough for a page of 500 jobs with large inputs; more is refused with a message.
    private let maxBytes = 256 * 1024 * 1024

    init(server: String, apiKey: String?) {
        self.server = server
        self.apiKey = apiKey
    }

    /// Sends one request to `path` (which starts with `/`). `timeout` covers the whole exchange,
    /// so a long poll passes its wait plus a margin.
    func send(_ method: String, _ path: String, query: [(String, String)] = [], body: [UInt8]? = nil,
              headers: [(name: String, value: String)] = [], timeout: Duration = .seconds(30)) throws -> Response {
        let request = makeRequest(method, path, query: query, body: body, headers: headers, timeout: timeout)
        return try check(http.perform(request))
    }

    /// Sends a GET whose 2xx body goes to `receive` as it arrives: for Server-Sent Events.
    /// Returns when the server ends the stream. An answer that is not a 2xx throws as in `send`.
    func stream(_ path: String, headers: [(name: String, value: String)], idleTimeout: Duration,
                receive: (UnsafeRawBufferPointer) -> Void) throws {
        var request = makeRequest("GET", path, query: [], body: nil, headers: headers, timeout: .seconds(86_400))
        request.idleTimeout = idleTimeout
        request.headers.append((name: "Accept", value: "text/event-stream"))
        _ = try check(http.stream(request, receive: receive))
    }

    private func makeRequest(_ method: String, _ path: String, query: [(String, String)], body: [UInt8]?,
                             headers: [(name: String, value: String)], timeout: Duration) -> OutboundRequest {
        var url = server + path
        if !query.isEmpty {
            url += "?" + query.map { "\(Self.pathSegment($0.0))=\(Self.pathSegment($0.1))" }.joined(separator: "&")
        }
        var allHeaders = headers
        if let apiKey { allHeaders.append((name: "Authorization", value: "Bearer \(apiKey)")) }
        if body != nil {
            allHeaders.append((name: "Content-Type", value: "application/json"))
            // No `Expect: 100-continue` round trip before a large body.
            allHeaders.append((name: "Expect", value: ""))
        }
        if !allHeaders.contains(where: { $0.name == "Accept" }) {
            allHeaders.append((name: "Accept", value: "application/json"))
        }
        return OutboundRequest(url: url, method: method, body: body, headers: allHeaders, timeout: timeout,
                               maxBytes: maxBytes, followRedirects: false, keepsBody: true)
    }

    /// The response if it is a 2xx; otherwise the error a command exits with.
    private func check(_ result: Result<OutboundResponse, OutboundFailure>) throws -> Response {
        let response: OutboundResponse
        switch result {
        case .success(let answered): response = answered
        case .failure(let failure): throw ClientError(status: .unavailable, message: failure.clientMessage(server: server))
        }
        switch response.status {
        case 200..<300:
            return Response(status: response.status, body: response.body)
        case 404:
            throw ClientError(status: .notFound, message: ProblemMessage(response).text)
        case 400..<500:
            throw ClientError(status: .refused, message: ProblemMessage(response).text)
        default:
            throw ClientError(status: .unavailable, message: ProblemMessage(response).text)
        }
    }

    /// `text` percent-encoded but for RFC 3986's unreserved characters: safe as one path
    /// segment or one query value, so an ID such as `../stats` cannot reach another route.
    static func pathSegment(_ text: String) -> String {
        text.utf8.map { byte in
            unreserved.contains(byte) ? String(UnicodeScalar(byte)) : String(format: "%%%02X", byte)
        }.joined()
    }

    private static let unreserved = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~".utf8)
}
