import Foundation
import Logging
import Synchronization
import Testing
@testable import JobCore

@Suite("Worker pool")
struct WorkerPoolTests {
    private let logger = Logger(label: "test")

    /// Tracks how many jobs run at the same moment.
    private final class Concurrency: Sendable {
        private let state = Mutex((current: 0, peak: 0))
        func enter() { state.withLock { $0.current += 1; $0.peak = max($0.peak, $0.current) } }
        func leave() { state.withLock { $0.current -= 1 } }
        var peak: Int { state.withLock { $0.peak } }
    }

    /// Polls, with a deadline, until `count` jobs are running.
    private func waitUntil(running count: Int, in pool: WorkerPool, sourceLocation: SourceLocation = #_sourceLocation) {
        let deadline = ContinuousClock.now + .seconds(5)
        while pool.statistics.running < count, ContinuousClock.now < deadline { Thread.sleep(forTimeInterval: 0.005) }
        #expect(pool.statistics.running == count, sourceLocation: sourceLocation)
    }

    private func job(_ work: @escaping JobWork) -> Job {
        Job(kind: "test", input: .null, createdAt: Date(), work: work)
    }

    @Test("a burst never runs more than N jobs at once, and does use all N")
    func burstRespectsWorkerCount() throws {
        let pool = WorkerPool(workerCount: 3, maxQueued: 1000, logger: logger)
        pool.start()
        defer { pool.drain(grace: .seconds(5)) }
        let concurrency = Concurrency()
        let jobs = (0..<30).map { _ in
            job { context throws(JobFailure) in
                concurrency.enter()
                defer { concurrency.leave() }
                try context.sleep(for: .milliseconds(20))
                return .null
            }
        }
        for job in jobs { try pool.submit(job) }
        for job in jobs { #expect(job.result(timeout: .seconds(10))?.status == .succeeded) }
        #expect(concurrency.peak == 3)
    }

    @Test("a full queue refuses the job and records nothing for it")
    func fullQueue() throws {
        let pool = WorkerPool(workerCount: 1, maxQueued: 1, logger: logger)
        pool.start()
        defer { pool.drain(grace: .zero) }
        let blocker = job { context throws(JobFailure) in try context.sleep(for: .seconds(30)); return .null }
        try pool.submit(blocker)
        // Wait until the blocker occupies the only worker, so the queue is empty again.
        waitUntil(running: 1, in: pool)
        try pool.submit(job { _ in .null })
        var recorded = false
        #expect(throws: PoolError.queueFull(limit: 1)) {
            try pool.submit(job { _ in .null }) { recorded = true }
        }
        #expect(!recorded)
        let statistics = pool.statistics
        #expect((statistics.queued, statistics.running, statistics.workers) == (1, 1, 1))
        #expect(statistics.oldestQueuedAt != nil)
        blocker.cancel()
    }

    @Test("a job cancelled while queued frees its queue slot")
    func cancelledQueuedJobFreesSlot() throws {
        let pool = WorkerPool(workerCount: 1, maxQueued: 1, logger: logger)
        pool.start()
        defer { pool.drain(grace: .zero) }
        let blocker = job { context throws(JobFailure) in try context.sleep(for: .seconds(30)); return .null }
        try pool.submit(blocker)
        waitUntil(running: 1, in: pool)
        let queued = job { _ in .null }
        try pool.submit(queued)
        queued.cancel()
        #expect(pool.statistics.queued == 0)
        try pool.submit(job { _ in .null })
        blocker.cancel()
    }

    @Test("drain lets short jobs finish, interrupts long ones, and refuses new work")
    func drain() throws {
        let pool = WorkerPool(workerCount: 2, maxQueued: 10, logger: logger)
        pool.start()
        let short = job { context throws(JobFailure) in try context.sleep(for: .milliseconds(50)); return .string("ok") }
        let long = job { context throws(JobFailure) in try context.sleep(for: .seconds(60)); return .null }
        try pool.submit(short)
        try pool.submit(long)
        waitUntil(running: 2, in: pool)
        let started = ContinuousClock.now
        pool.drain(grace: .milliseconds(300))
        #expect(ContinuousClock.now - started < .seconds(3))
        #expect(short.snapshot().status == .succeeded)
        #expect(long.snapshot().status == .failed)
        #expect(long.snapshot().error?.code == "interrupted")
        #expect(throws: PoolError.shuttingDown) { try pool.submit(job { _ in .null }) }
    }

    @Test("deferred wake-ups still run every job")
    func deferredWakeUps() throws {
        let pending = Mutex<[@Sendable () -> Void]>([])
        let pool = WorkerPool(workerCount: 2, maxQueued: 100, logger: logger) { wakeUp in
            pending.withLock { $0.append(wakeUp) }
        }
        pool.start()
        defer { pool.drain(grace: .seconds(1)) }
        let jobs = (0..<10).map { _ in job { _ in .null } }
        for job in jobs { try pool.submit(job) }
        let wakeUps = pending.withLock { $0 }
        #expect(wakeUps.count == 1, "one wake-up shared by the whole batch")
        for wakeUp in wakeUps { wakeUp() }
        for job in jobs { #expect(job.result(timeout: .seconds(5))?.status == .succeeded) }
    }
}

@Suite("Worker pool: one owner's share of the queue")
struct OwnerQueueShareTests {
    private let logger = Logger(label: "test")

    private func job(owner: String?) -> Job {
        Job(kind: "test", input: .null, createdAt: Date(), owner: owner) { _ in .null }
    }

    @Test("an owner at its limit is refused with its own limit; other owners and ownerless jobs still queue")
    func ownerLimit() throws {
        // Not started: queued jobs stay queued, so the counts are exact.
        let pool = WorkerPool(workerCount: 1, maxQueued: 10, maxQueuedPerOwner: 3, logger: logger)
        let alices = (0..<3).map { _ in job(owner: "alice") }
        for job in alices { try pool.submit(job) }
        #expect(throws: PoolError.ownerQueueFull(limit: 3)) { try pool.submit(job(owner: "alice")) }
        try pool.submit(job(owner: "bob"))
        for _ in 0..<4 { try pool.submit(job(owner: nil)) }
        #expect(pool.statistics.queued == 8)
        // A cancelled queued job gives its owner's slot back.
        #expect(alices[0].cancel() == .cancelled)
        try pool.submit(job(owner: "alice"))
        #expect(throws: PoolError.ownerQueueFull(limit: 3)) { try pool.submit(job(owner: "alice")) }
        // The whole queue's limit still holds for everyone.
        try pool.submit(job(owner: "carol"))
        try pool.submit(job(owner: "carol"))
        #expect(throws: PoolError.queueFull(limit: 10)) { try pool.submit(job(owner: "dave")) }
    }

    @Test("slots reserved for an owner and released are that owner's again")
    func reserveAndRelease() throws {
        let pool = WorkerPool(workerCount: 1, maxQueued: 10, maxQueuedPerOwner: 2, logger: logger)
        try pool.reserveSlot(count: 2, owner: "alice")
        #expect(throws: PoolError.ownerQueueFull(limit: 2)) { try pool.reserveSlot(owner: "alice") }
        pool.releaseSlot(count: 2, owner: "alice")
        try pool.reserveSlot(count: 2, owner: "alice")
        #expect(pool.statistics.queued == 2)
    }

    @Test("a worker taking an owner's job frees that owner's slot")
    func runningFreesSlot() throws {
        let pool = WorkerPool(workerCount: 1, maxQueued: 10, maxQueuedPerOwner: 1, logger: logger)
        pool.start()
        defer { pool.drain(grace: .zero) }
        let first = job(owner: "alice")
        try pool.submit(first)
        #expect(first.result(timeout: .seconds(10))?.status == .succeeded)
        try pool.submit(job(owner: "alice"))
    }
}
