import CoreMetrics
import JobCore

/// The HTTP request metrics, cached per label set on the loop thread: a reply then costs one
/// dictionary lookup, not a registry lookup under a lock with a label string built each time.
/// Loop thread only.
final class HTTPMetrics {
    private struct RequestKey: Hashable {
        var route: String
        var method: String
        var status: Int
    }

    private let metrics: JobMetrics
    private var counters: [RequestKey: Counter] = [:]
    private var timers: [String: Timer] = [:]

    init(metrics: JobMetrics) {
        self.metrics = metrics
    }

    func record(route: String, method: String, status: Int, elapsed: Duration) {
        let key = RequestKey(route: route, method: method, status: status)
        let counter = counters[key] ?? {
            let made = metrics.counter("jobpool_http_requests_total", [("route", route), ("method", method), ("status", String(status))])
            counters[key] = made
            return made
        }()
        counter.increment()
        let timer = timers[route] ?? {
            let made = metrics.timer("jobpool_http_request_duration_seconds", [("route", route)])
            timers[route] = made
            return made
        }()
        timer.recordNanoseconds(elapsed.clampedNanoseconds)
    }
}
