import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A real HTTP client (URLSession, libcurl underneath on Linux) for the integration tests.
struct TestHTTPClient: Sendable {
    struct Response: Sendable {
        var status: Int
        var headers: [String: String]
        var body: Data

        /// The body as a JSON object (parsed with Foundation, independently of the server's parser).
        var json: [String: any Sendable] {
            (try? JSONSerialization.jsonObject(with: body)) as? [String: any Sendable] ?? [:]
        }

        func header(_ name: String) -> String? {
            headers.first { $0.key.caseInsensitiveCompare(name) == .orderedSame }?.value
        }

        var text: String { String(decoding: body, as: UTF8.self) }
    }

    let baseURL: String

    private static let session: URLSession = {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = 30
        configuration.httpMaximumConnectionsPerHost = 64
        return URLSession(configuration: configuration)
    }()

    func send(_ method: String, _ path: String, body: String? = nil, headers: [String: String] = [:]) async throws -> Response {
        try await send(method, path, bodyData: body.map { Data($0.utf8) }, headers: headers)
    }

    func send(_ method: String, _ path: String, bodyData: Data?, headers: [String: String] = [:]) async throws -> Response {
        var request = URLRequest(url: URL(string: baseURL + path)!)
        request.httpMethod = method
        request.httpBody = bodyData
        if bodyData != nil { request.setValue("application/json", forHTTPHeaderField: "Content-Type") }
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        let (data, response) = try await Self.session.data(for: request)
        let http = response as! HTTPURLResponse
        var responseHeaders: [String: String] = [:]
        for (name, value) in http.allHeaderFields { responseHeaders["\(name)"] = "\(value)" }
        return Response(status: http.statusCode, headers: responseHeaders, body: data)
    }

    func get(_ path: String, headers: [String: String] = [:]) async throws -> Response {
        try await send("GET", path, headers: headers)
    }

    func post(_ path: String, _ body: String? = nil, headers: [String: String] = [:]) async throws -> Response {
        try await send("POST", path, body: body, headers: headers)
    }

    /// Submits a write_code job that sleeps between `min` and `max` seconds.
    func submitWriteCode(name: String = "alex", min: Double = 0, max: Double = 0,
                         headers: [String: String] = [:]) async throws -> Response {
        try await post("/v1/jobs", #"{"kind":"write_code","input":{"name":"\#(name)","min_seconds":\#(min),"max_seconds":\#(max)}}"#,
                       headers: headers)
    }
}
