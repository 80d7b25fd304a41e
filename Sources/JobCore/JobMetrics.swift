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

    /// One kind's job metrics, resolved once: the per-job path is a dictionary lookup by kind.
    private final class KindMetrics: Sendable {
        let submitted: Counter
        let started: Counter
        let queueWait: CoreMetrics.Timer
        let runTime: CoreMetrics.Timer
        let finished: [JobState: Counter]

        init(kind: String, factory: any MetricsFactory) {
            submitted = Counter(label: "jobpool_jobs_submitted_total", dimensions: [("kind", kind)], factory: factory)
            started = Counter(label: "jobpool_jobs_started_total", dimensions: [("kind", kind)], factory: factory)
            queueWait = CoreMetrics.Timer(label: "jobpool_job_queue_wait_seconds", dimensions: [("kind", kind)], factory: factory)
            runTime = CoreMetrics.Timer(label: "jobpool_job_run_seconds", dimensions: [("kind", kind)], factory: factory)
            finished = Dictionary(uniqueKeysWithValues: JobState.allCases.filter(\.isFinished).map { status in
                (status, Counter(label: "jobpool_jobs_finished_total", dimensions: [("kind", kind), ("status", status.rawValue)],
                                 factory: factory))
            })
        }
    }

    private let kinds = Mutex<[String: KindMetrics]>([:])

    private func kind(_ name: String) -> KindMetrics {
        kinds.withLock { kinds in
            if let known = kinds[name] { return known }
            let made = KindMetrics(kind: name, factory: factory)
            kinds[name] = made
            return made
        }
    }

    func submitted(kind name: String) { kind(name).submitted.increment() }

    func started(kind name: String, queueWait: Duration) {
        let metrics = kind(name)
        metrics.started.increment()
        metrics.queueWait.recordNanoseconds(Self.nanoseconds(queueWait))
    }

    func finished(kind name: String, status: JobState, runTime: Duration?) {
        let metrics = kind(name)
        metrics.finished[status]?.increment()
        if let runTime { metrics.runTime.recordNanoseconds(Self.nanoseconds(runTime)) }
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
        duration.clampedNanoseconds
    }
}
