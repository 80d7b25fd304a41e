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
        #expect(job.markRunning() != nil)
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
        #expect(job.markRunning() != nil)
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
        #expect(job.markRunning() == nil, "a cancelled job must never start")
        #expect(job.cancel() == .alreadyFinished(.cancelled))
    }

    @Test("cancelling a running job interrupts its sleep promptly")
    func cancelRunning() throws {
        let job = makeJob { context throws(JobFailure) in
            try context.sleep(for: .seconds(30))
            return .null
        }
        #expect(job.markRunning() != nil)
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
        #expect(job.markRunning() != nil)
        _ = job.execute(backoff: RetryBackoff())
        #expect(job.snapshot().status == .failed)
        #expect(job.snapshot().error == JobFailure(code: "boom", message: "it broke"))
    }
}

/// A cancel that lands while a run is ending in a retryable failure: the cancel must win
/// (the job ends `cancelled`) or find the job already `scheduled` (and cancel it there). It
/// must never report `stopping` and then see the job retried with a fresh stop signal.
@Suite("Cancel racing a retry")
struct CancelRacingRetryTests {
    @Test("a cancel racing a retry is never lost", .timeLimit(.minutes(1)))
    func cancelRacingRetry() throws {
        let iterations = 5_000
        let jobs = (0..<iterations).map { _ in
            Job(kind: "test", input: .null, createdAt: Date(), options: JobOptions(maxAttempts: 3)) { _ throws(JobFailure) in
                throw JobFailure(code: "timeout", message: "retry me", isRetryable: true)
            }
        }
        let go = Atomic<Int>(-1)
        let finished = Atomic<Int>(-1)
        let offsets = (0..<iterations).map { _ in Int.random(in: 0..<400) }
        let cancelOffsets = (0..<iterations).map { _ in Int.random(in: 0..<800) }
        // The runner: starts each job's run on the signal, after a varying pause, so that the
        // cancel lands at every point of the run's ending.
        Thread {
            for index in 0..<iterations {
                while go.load(ordering: .acquiring) < index {}
                for _ in 0..<offsets[index] { _ = go.load(ordering: .relaxed) }
                _ = jobs[index].execute(backoff: RetryBackoff(base: .seconds(60)))
                finished.store(index, ordering: .releasing)
            }
        }.start()
        var lost = 0
        var notCancelled = 0
        for (index, job) in jobs.enumerated() {
            _ = try #require(job.markRunning())
            go.store(index, ordering: .releasing)
            for _ in 0..<cancelOffsets[index] { _ = go.load(ordering: .relaxed) }
            let outcome = job.cancel()
            while finished.load(ordering: .acquiring) < index {}
            let status = job.snapshot().status
            if outcome == .stopping, status == .scheduled { lost += 1 }
            if outcome != .alreadyFinished(.scheduled), status != .cancelled { notCancelled += 1 }
        }
        #expect(lost == 0, "\(lost) of \(iterations) cancels answered 'stopping' and the job was retried anyway")
        #expect(notCancelled == 0, "\(notCancelled) of \(iterations) jobs asked to stop did not end cancelled")
    }
}
