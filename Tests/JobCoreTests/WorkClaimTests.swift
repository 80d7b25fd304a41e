import Foundation
import Logging
import Synchronization
import Testing
@testable import JobCore

/// The pool takes work only by claiming it from the store's work queue.
@Suite("Work claims")
struct WorkClaimTests {
    /// The store's queue, counting what passes through it.
    private final class CountingWorkQueue: WorkQueue {
        let inner = LocalWorkQueue()
        let tally = Mutex((offered: 0, claimed: 0))

        func offer(_ job: Job) {
            tally.withLock { $0.offered += 1 }
            inner.offer(job)
        }

        func claimNext(now: Date) -> Job? {
            let job = inner.claimNext(now: now)
            if job != nil { tally.withLock { $0.claimed += 1 } }
            return job
        }

        var hasClaimableWork: Bool { inner.hasClaimableWork }
        func oldestQueuedAt(owner: String??) -> Date? { inner.oldestQueuedAt(owner: owner) }
        func takeUnclaimed() -> [Job] { inner.takeUnclaimed() }
    }

    @Test("every job a worker runs was claimed from the store's queue, once")
    func workersClaim() throws {
        let queue = CountingWorkQueue()
        let pool = WorkerPool(workerCount: 3, maxQueued: 1000, logger: Logger(label: "test"), work: queue)
        pool.start()
        defer { pool.drain(grace: .seconds(5)) }
        let runs = Mutex(0)
        let jobs = (0..<200).map { _ in
            Job(kind: "test", input: .null, createdAt: Date()) { _ throws(JobFailure) in
                runs.withLock { $0 += 1 }
                return .null
            }
        }
        for job in jobs { try pool.submit(job) }
        for job in jobs { #expect(job.result(timeout: .seconds(10))?.status == .succeeded) }
        #expect(runs.withLock { $0 } == 200)
        #expect(queue.tally.withLock { $0 } == (offered: 200, claimed: 200))
        #expect(!queue.hasClaimableWork)
    }

    @Test("a drain hands back what was never claimed, and the queue is empty after")
    func drainTakesUnclaimed() throws {
        let queue = CountingWorkQueue()
        let pool = WorkerPool(workerCount: 1, maxQueued: 10, logger: Logger(label: "test"), work: queue)
        pool.start()
        let blocker = Job(kind: "test", input: .null, createdAt: Date()) { context throws(JobFailure) in
            try context.sleep(for: .seconds(30))
            return .null
        }
        try pool.submit(blocker)
        let deadline = ContinuousClock.now + .seconds(5)
        while pool.statistics.running < 1, ContinuousClock.now < deadline { Thread.sleep(forTimeInterval: 0.005) }
        let waiting = (0..<3).map { _ in Job(kind: "test", input: .null, createdAt: Date()) { _ throws(JobFailure) in .null } }
        for job in waiting { try pool.submit(job) }
        let neverRan = pool.drain(grace: .zero)
        #expect(Set(neverRan.map(\.id)) == Set(waiting.map(\.id)))
        #expect(queue.tally.withLock { $0.claimed } == 1)
        #expect(!queue.hasClaimableWork)
    }

    @Test("both local stores hand out their own queue, in priority order")
    func storesOwnTheirQueue() {
        let store = MemoryJobStore(agingStep: .seconds(10))
        let low = Job(kind: "test", input: .null, createdAt: Date(), options: JobOptions(priority: -5)) { _ throws(JobFailure) in .null }
        let high = Job(kind: "test", input: .null, createdAt: Date(), options: JobOptions(priority: 5)) { _ throws(JobFailure) in .null }
        store.workQueue.offer(low)
        store.workQueue.offer(high)
        #expect(store.workQueue.claimNext(now: Date())?.id == high.id)
        #expect(store.workQueue.claimNext(now: Date())?.id == low.id)
        #expect(store.workQueue.claimNext(now: Date()) == nil)
    }
}
