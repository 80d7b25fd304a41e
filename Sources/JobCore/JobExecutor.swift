import Foundation
import Logging

/// The job service's core, like `ThreadPoolExecutor`: known kinds, the index of jobs, and the
/// worker pool. Everything the HTTP layer does to jobs goes through here.
///
/// ```swift
/// let executor = JobExecutor(configuration: .init(workers: 8), kinds: [WriteCode()], logger: logger)
/// executor.start()
/// let job = try executor.submit(kind: "write_code", input: .object(["name": .string("alex")]))
/// ```
public final class JobExecutor: Sendable {
    public struct Configuration: Sendable {
        /// Worker threads, and so the most jobs that run at once.
        public var workers: Int
        /// Jobs that may wait in the queue before submissions are refused.
        public var maxQueued: Int

        public init(workers: Int = 8, maxQueued: Int = 100_000) {
            self.workers = workers
            self.maxQueued = maxQueued
        }
    }

    private let kinds: [String: any JobKind]
    private let registry = JobRegistry()
    private let pool: WorkerPool
    private let logger: Logger
    private let completionListener: CompletionListener?

    /// Called once, on the finishing thread, for every job with a webhook, after its final
    /// state is recorded: the webhook deliverer's way in.
    public typealias CompletionListener = @Sendable (_ job: Job, _ final: JobSnapshot) -> Void

    /// - Parameter deferWakeUp: see ``WorkerPool/init(workerCount:maxQueued:logger:deferWakeUp:)``.
    public init(configuration: Configuration, kinds: [any JobKind], logger: Logger,
                deferWakeUp: WorkerPool.WakeUpDeferral? = nil, completionListener: CompletionListener? = nil) {
        self.completionListener = completionListener
        self.kinds = Dictionary(kinds.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        self.pool = WorkerPool(workerCount: configuration.workers, maxQueued: configuration.maxQueued,
                               logger: logger, deferWakeUp: deferWakeUp)
        self.logger = logger
    }

    /// The kind names clients may submit, sorted.
    public var kindNames: [String] { kinds.keys.sorted() }

    public func start() { pool.start() }

    /// Checks and queues a job. Nothing is created unless this returns.
    public func submit(kind: String, input: JSONValue, webhook: WebhookTarget? = nil) throws(SubmitError) -> Job {
        guard let jobKind = kinds[kind] else { throw SubmitError.unknownKind(kind, known: kindNames) }
        let work: JobWork
        do throws(InputError) {
            work = try jobKind.makeWork(input: input)
        } catch {
            throw SubmitError.invalidInput(error)
        }
        let job = Job(kind: kind, input: input, createdAt: registry.nextCreationTime(), webhook: webhook, work: work)
        if webhook != nil, let completionListener {
            // Weak: a job refused by a full queue must not keep itself alive through this.
            job.addDoneCallback { [weak job] final in
                if let job { completionListener(job, final) }
            }
        }
        do throws(PoolError) {
            try pool.submit(job) { registry.insert(job) }
        } catch {
            switch error {
            case .queueFull(let limit): throw SubmitError.queueFull(limit: limit)
            case .shuttingDown: throw SubmitError.shuttingDown
            }
        }
        logger.debug("Job queued", metadata: ["job.id": "\(job.id)", "job.kind": "\(kind)"])
        return job
    }

    /// The job with this ID, if it exists.
    public func job(withID id: JobID) -> Job? { registry.job(withID: id) }

    /// A page of jobs, newest first.
    public func list(filter: JobFilter = JobFilter(), limit: Int = 50, after cursor: JobCursor? = nil) -> JobPage {
        registry.list(filter: filter, limit: limit, after: cursor)
    }

    public var statistics: WorkerPool.Statistics { pool.statistics }

    /// Stops taking jobs, gives running ones `grace` to finish, then interrupts them. Blocks;
    /// call it off the event loop. Returns how many queued jobs never ran.
    @discardableResult
    public func drain(grace: Duration) -> Int {
        let neverRan = pool.drain(grace: grace)
        if !neverRan.isEmpty {
            logger.warning("Queued jobs were not run before shutdown; the in-memory store does not keep them",
                           metadata: ["count": "\(neverRan.count)"])
        }
        return neverRan.count
    }
}

/// Why a submission was refused. Nothing was created.
public enum SubmitError: Error, Sendable, Equatable {
    case unknownKind(String, known: [String])
    case invalidInput(InputError)
    case queueFull(limit: Int)
    case shuttingDown
}
