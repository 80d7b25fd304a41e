import Foundation
import Logging
import Testing
@testable import JobCore

/// A shared queue's claim of a job this node still holds under an earlier attempt.
@Suite("Claims of a job held under an earlier attempt")
struct ClaimedAgainTests {
    /// Found by the cluster suite (PostgreSQL stopped for 5 s under load): a node whose lease
    /// lapsed in the outage still held a job's attempt 1 (its outcome waiting to be refused as
    /// stale) when it claimed the re-queued attempt 2 under its new node ID. The claim reused
    /// the attempt-1 object, which never ran again, and the row stayed `running` for good.
    @Test("a claimed next attempt gets a job of its own, queued, while the earlier attempt's object still runs")
    func claimedWhileEarlierAttemptRuns() throws {
        var logger = Logger(label: "test")
        logger.logLevel = .error
        let executor = JobExecutor(configuration: .init(workers: 1, maxQueued: 10), kinds: [WriteCode()], logger: logger)
        executor.start()
        defer { executor.drain(grace: .zero) }
        let earlier = try #require(try executor.submit(kind: "write_code", input: .object(["name": .string("a"), "min_seconds": .integer(30), "max_seconds": .integer(30)]),
                                                       whenDurable: { _ in }))
        let deadline = ContinuousClock.now + .seconds(5)
        while earlier.snapshot().status != .running, ContinuousClock.now < deadline { Thread.sleep(forTimeInterval: 0.005) }
        #expect(earlier.snapshot().status == .running)

        var claimed = earlier.record()
        claimed.attempt = 2
        let job = executor.makeClaimedJob(claimed)
        #expect(job !== earlier, "the claim reused the earlier attempt's object")
        #expect(job.snapshot().status == .queued, "the claimed attempt must be runnable")
        #expect(job.snapshot().attempt == 2)
        #expect(executor.live.job(withID: earlier.id) === job)
    }
}
