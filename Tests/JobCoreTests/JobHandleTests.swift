import Foundation
import Logging
import Synchronization
import Testing
@testable import JobCore

@Suite("Job handle (the Future)")
struct JobHandleTests {
    private func makeJob(_ work: @escaping JobWork = { _ in .string("done") }) -> Job {
        Job(kind: "test", input: .null, createdAt: Date(), work: work)
    }

    @Test("done-callbacks run exactly once, also when added after the job finished")
    func doneCallbacksRunOnce() {
        let job = makeJob()
        let calls = Mutex(0)
        job.addDoneCallback { _ in calls.withLock { $0 += 1 } }
        #expect(job.markRunning())
        _ = job.execute(backoff: RetryBackoff())
        job.addDoneCallback { snapshot in
            #expect(snapshot.status == .succeeded)
            calls.withLock { $0 += 1 }
        }
        _ = job.execute(backoff: RetryBackoff()) // a second completion attempt must change nothing
        #expect(calls.withLock { $0 } == 2)
        #expect(job.snapshot().result == .string("done"))
    }

    @Test("result(timeout:) returns nil while running and the final snapshot once done")
    func resultWithTimeout() {
        let job = makeJob { context throws(JobFailure) in
            try context.sleep(for: .milliseconds(200))
            return .integer(7)
        }
        #expect(job.markRunning())
        Thread { _ = job.execute(backoff: RetryBackoff()) }.start()
        #expect(job.result(timeout: .milliseconds(10)) == nil)
        let finished = job.result(timeout: .seconds(5))
        #expect(finished?.status == .succeeded)
        #expect(finished?.result == .integer(7))
    }

    @Test("cancelling a queued job finishes it at once; a finished job cannot be cancelled")
    func cancelQueuedAndFinished() {
        let job = makeJob()
        #expect(job.cancel() == .cancelled)
        #expect(job.snapshot().status == .cancelled)
        #expect(job.snapshot().error?.code == "cancelled")
        #expect(!job.markRunning(), "a cancelled job must never start")
        #expect(job.cancel() == .alreadyFinished(.cancelled))
    }

    @Test("cancelling a running job interrupts its sleep promptly")
    func cancelRunning() throws {
        let job = makeJob { context throws(JobFailure) in
            try context.sleep(for: .seconds(30))
            return .null
        }
        #expect(job.markRunning())
        Thread { _ = job.execute(backoff: RetryBackoff()) }.start()
        let started = ContinuousClock.now
        #expect(job.cancel() == .stopping)
        let finished = try #require(job.result(timeout: .seconds(5)))
        #expect(finished.status == .cancelled)
        #expect(ContinuousClock.now - started < .milliseconds(100))
    }

    @Test("a failure is recorded with its code and message")
    func failure() {
        let job = makeJob { _ throws(JobFailure) in throw JobFailure(code: "boom", message: "it broke") }
        #expect(job.markRunning())
        _ = job.execute(backoff: RetryBackoff())
        #expect(job.snapshot().status == .failed)
        #expect(job.snapshot().error == JobFailure(code: "boom", message: "it broke"))
    }
}
