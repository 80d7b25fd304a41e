import CoreMetrics
import Synchronization

/// The job counters and histograms, through swift-metrics. Each server passes its own factory
/// (the executable a Prometheus registry), so tests can run several servers in one process.
public final class JobMetrics: Sendable {
    private let factory: any MetricsFactory
    private let counters = Mutex<[String: Counter]>([:])
    private let timers = Mutex<[String: CoreMetrics.Timer]>([:])

    /// Metrics that go nowhere.
    public static let none = JobMetrics(factory: NOOPMetricsHandler.instance)

    public init(factory: any MetricsFactory) {
        self.factory = factory
    }

    func submitted(kind: String) { counter("jobpool_jobs_submitted_total", [("kind", kind)]).increment() }

    func started(kind: String, queueWait: Duration) {
        counter("jobpool_jobs_started_total", [("kind", kind)]).increment()
        timer("jobpool_job_queue_wait_seconds", [("kind", kind)]).recordNanoseconds(Self.nanoseconds(queueWait))
    }

    func finished(kind: String, status: JobState, runTime: Duration?) {
        counter("jobpool_jobs_finished_total", [("kind", kind), ("status", status.rawValue)]).increment()
        if let runTime {
            timer("jobpool_job_run_seconds", [("kind", kind)]).recordNanoseconds(Self.nanoseconds(runTime))
        }
    }

    /// A counter made once per label set and kept: creating one per event would look it up in
    /// the registry every time.
    public func counter(_ label: String, _ dimensions: [(String, String)]) -> Counter {
        let key = Self.key(label, dimensions)
        return counters.withLock { cache in
            if let counter = cache[key] { return counter }
            let counter = Counter(label: label, dimensions: dimensions, factory: factory)
            cache[key] = counter
            return counter
        }
    }

    /// A timer (a duration histogram in Prometheus), made once per label set.
    public func timer(_ label: String, _ dimensions: [(String, String)]) -> CoreMetrics.Timer {
        let key = Self.key(label, dimensions)
        return timers.withLock { cache in
            if let timer = cache[key] { return timer }
            let timer = CoreMetrics.Timer(label: label, dimensions: dimensions, factory: factory)
            cache[key] = timer
            return timer
        }
    }

    /// A gauge; gauges are set when metrics are read, so they are not cached.
    public func gauge(_ label: String, _ dimensions: [(String, String)] = []) -> Gauge {
        Gauge(label: label, dimensions: dimensions, factory: factory)
    }

    private static func key(_ label: String, _ dimensions: [(String, String)]) -> String {
        dimensions.reduce(label) { $0 + "|" + $1.0 + "=" + $1.1 }
    }

    static func nanoseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000
    }
}
