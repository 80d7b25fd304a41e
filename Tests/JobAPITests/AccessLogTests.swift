import Foundation
import JobCore
import Logging
import Prometheus
import Synchronization
import Testing
@testable import JobAPI

/// The access log's queue: bounded, counted when full, and emptied by a clean stop.
@Suite("Access log")
struct AccessLogTests {
    /// Collects the messages logged through it.
    private final class Capture: Sendable {
        let lines = Mutex<[Logger.Metadata]>([])
    }

    private struct CaptureHandler: LogHandler {
        let capture: Capture
        var logLevel: Logger.Level = .info
        var metadata: Logger.Metadata = [:]
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) { capture.lines.withLock { $0.append(event.metadata ?? [:]) } }
    }

    @Test("past its capacity a record is dropped and counted; stop writes every queued one")
    func boundedAndFlushed() throws {
        let capture = Capture()
        let logger = Logger(label: "test") { _ in CaptureHandler(capture: capture) }
        let registry = PrometheusCollectorRegistry()
        let log = AccessLog(logger: logger, metrics: JobMetrics(factory: PrometheusMetricsFactory(registry: registry)), capacity: 3)
        // Not started yet, so nothing drains the queue while it fills.
        for status in [200, 201, 202, 500, 503] {
            log.record(AccessLog.Entry(requestID: "r\(status)", method: "GET", route: "/healthz", status: status, elapsed: .milliseconds(2),
                                       time: Date()))
        }
        let metrics = String(decoding: registry.emitToBuffer(), as: UTF8.self)
        #expect(metrics.contains("jobpool_access_log_dropped_total 2"), "\(metrics)")
        log.start()
        log.stop()
        let lines = capture.lines.withLock { $0 }
        #expect(lines.count == 3, "every queued record is written by a clean stop")
        #expect(lines.map { $0["request.id"]?.description } == ["r200", "r201", "r202"])
        #expect(lines.first?["duration_ms"]?.description == "2.0")
    }
}
