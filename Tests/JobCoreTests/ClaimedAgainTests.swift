import Foundation
import Logging
import Testing
@testable import JobCore

/// A shared queue's claim of a job this node still holds under an earlier attempt.
@Suite("Claims of a job held under an earlier attempt")
struct ClaimedAgainTests {
    /// An executor of one worker, started, running a job that takes 30 s (drain it after).
    func executorRunningOneJob() throws -> (JobExecutor, Job) {
        var logger = Logger(label: "test")
        logger.logLevel = .error
        let executor = JobExecutor(configuration: .init(workers: 1, maxQueued: 10), kinds: [WriteCode()], logger: logger)
        executor.start()
        let job = try #require(try executor.submit(kind: "write_code", input: .object(["name": .string("a"), "min_seconds": .integer(30), "max_seconds": .integer(30)]),
                                                   whenDurable: { _ in }))
        let deadline = ContinuousClock.now + .seconds(5)
        while job.snapshot().status != .running, ContinuousClock.now < deadline { Thread.sleep(forTimeInterval: 0.005) }
        #expect(job.snapshot().status == .running)
        return (executor, job)
    }

    /// Found by the cluster suite (PostgreSQL stopped for 5 s under load): a node whose lease
    /// lapsed in the outage still held a job's attempt 1 (its outcome waiting to be refused as
    /// stale) when it claimed the re-queued attempt 2 under its new node ID. The claim reused
    /// the attempt-1 object, which never ran again, and the row stayed `running` for good.
    @Test("a claimed next attempt gets a job of its own, queued, while the earlier attempt's object still runs")
    func claimedWhileEarlierAttemptRuns() throws {
        let (executor, earlier) = try executorRunningOneJob()
        defer { executor.drain(grace: .zero) }

        var claimed = earlier.record()
        claimed.attempt = 2
        let job = try #require(executor.makeClaimedJob(claimed))
        #expect(job !== earlier, "the claim reused the earlier attempt's object")
        #expect(job.snapshot().status == .queued, "the claimed attempt must be runnable")
        #expect(job.snapshot().attempt == 2)
        #expect(executor.live.job(withID: earlier.id) === job)
    }

    /// Found by the cluster suite in CI (the same outage): node A accepted a job, node B
    /// claimed it as attempt 1 just before the database stopped, so A still held its waiting
    /// copy; B's lease lapsed, the rescue re-queued the job as attempt 2, and A claimed that
    /// before its next look at the table would have handed the copy off. A reused the copy,
    /// ran it as attempt 1, its outcome was refused as stale, and the row stayed `running`.
    @Test("a claimed next attempt of a job still waiting here as an earlier attempt gets a job of its own, at the claimed attempt")
    func claimedWhileEarlierAttemptWaits() throws {
        var logger = Logger(label: "test")
        logger.logLevel = .error
        // No workers: the accepted job waits in memory, as on a node whose claim went elsewhere.
        let executor = JobExecutor(configuration: .init(workers: 0, maxQueued: 10), kinds: [WriteCode()], logger: logger)
        executor.start()
        defer { executor.drain(grace: .zero) }
        let waiting = try #require(try executor.submit(kind: "write_code", input: .object(["name": .string("a")]), whenDurable: { _ in }))
        #expect(waiting.snapshot().status == .queued)

        var claimed = waiting.record()
        claimed.attempt = 2
        let job = try #require(executor.makeClaimedJob(claimed))
        #expect(job !== waiting, "the claim reused the copy waiting as attempt 1")
        #expect(job.snapshot().attempt == 2, "the claimed job runs as the claimed attempt")
        #expect(job.snapshot().status == .queued)
        #expect(executor.live.job(withID: waiting.id) === job)

        // The same attempt is still the waiting copy itself (its waiters see it run).
        let again = try #require(try executor.submit(kind: "write_code", input: .object(["name": .string("b")]), whenDurable: { _ in }))
        #expect(executor.makeClaimedJob(again.record()) === again)
    }

    /// A claim's jobs start while the claim commits. One whose connection was lost in the
    /// middle of that commit, and which the database did not keep, left its job queued while
    /// it ran here; this node, under the same node ID, then claimed the same attempt again.
    @Test("a claim of the attempt already running here starts no second copy")
    func claimedWhileSameAttemptRuns() throws {
        let (executor, running) = try executorRunningOneJob()
        defer { executor.drain(grace: .zero) }

        #expect(executor.makeClaimedJob(running.record()) == nil, "a second copy of the running attempt")
        #expect(executor.live.job(withID: running.id) === running)
        #expect(running.snapshot().status == .running)
    }
}
