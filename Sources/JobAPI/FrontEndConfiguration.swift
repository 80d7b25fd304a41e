import EventHTTP

/// What the HTTP front end is told: where it listens, its limits, and who may use it.
///
/// The application builds one from its own configuration and hands it to ``APIFrontEnd``.
public struct FrontEndConfiguration: Sendable {
    public var host = "127.0.0.1"
    /// 0 picks a free port; ``APIFrontEnd/bind()`` returns the one bound.
    public var port = 8080
    public var http = HTTPServerConfiguration()
    public var api = APIConfiguration()
    /// The seed's upper-casing TCP echo service, off unless a port is given.
    public var echoPort: Int?
    public var echo = LineEchoServer.Configuration()
    /// API keys; when any is set, `/v1` routes need `Authorization: Bearer <key>` and each key
    /// sees only its own jobs.
    public var apiKeys: [String] = []
    /// When set, `/metrics` needs this key too.
    public var metricsAPIKey: String?
    /// With API keys on and no ``metricsAPIKey``, `/metrics` is closed (403) unless this is set.
    public var publicMetrics = false
    /// The operator's `--webhook-secret`, used for webhooks registered without one.
    public var webhookDefaultSecret: String?
    /// Where access-log records go in batches, formatted by the caller; nil logs each request
    /// through the front end's `Logger` at `info`. Either way, only when that level is enabled.
    public var accessLogSink: (@Sendable ([AccessLogEntry]) -> Void)?

    public init() {}

    /// The evhttp limits in force: evhttp's own body cap stays well above the API's, so that
    /// an oversized body reaches the API, which answers it with a 413 problem a client can read.
    var effectiveHTTP: HTTPServerConfiguration {
        var http = self.http
        http.maxBodySize = max(http.maxBodySize, api.maxBodyBytes * 4)
        return http
    }
}
