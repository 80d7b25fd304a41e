import Dispatch
import Foundation
import Logging
import Synchronization
import Testing
import JobCore

/// Races in a job's life cycle, driven only through the executor's public API (submit, cancel,
/// observe, statistics), so that these tests outlive changes to how the pool and store work.
@Suite("Job life cycle races")
struct LifecycleRaceTests {
    private static let logger: Logger = {
        var logger = Logger(label: "test")
        logger.logLevel = .error
        return logger
    }()

    @Test("a job cancelled as it falls due gives its queue place back")
    func cancelAsItFallsDue() throws {
        let executor = JobExecutor(configuration: .init(workers: 1, maxQueued: 1), kinds: [ScriptedKind()], logger: Self.logger)
        executor.start()
        defer { executor.drain(grace: .seconds(1)) }
        // Far enough ahead that the observer below is surely registered before the job is due.
        let due = Date().addingTimeInterval(0.5)
        let job = try #require(try executor.submit(kind: ScriptedKind.name, input: .null, options: JobOptions(runAt: due),
                                                   whenDurable: { _ in }))
        // The observer runs when the job turns `queued`, before the pool has taken it: the
        // narrowest window there is between acceptance and the queue.
        let token = job.observe { snapshot in
            if snapshot.status == .queued { job.cancel() }
        }
        defer { job.removeObserver(token.token) }
        #expect(job.result(timeout: .seconds(5))?.status == .cancelled)
        #expect(waitUntil { executor.statistics.queued == 0 }, "queued count \(executor.statistics.queued) for an empty queue")
        // With the place leaked, a queue of one would refuse this for good.
        #expect(throws: Never.self) { _ = try executor.submit(kind: ScriptedKind.name, input: .null, whenDurable: { _ in }) }
    }

    @Test("observers may call into the pool: they never run under its lock")
    func observersRunOutsideThePoolLock() throws {
        let executor = JobExecutor(configuration: .init(workers: 1, maxQueued: 10), kinds: [ScriptedKind()], logger: Self.logger)
        let seenRunning = DispatchSemaphore(value: 0)
        let job = try #require(try executor.submit(kind: ScriptedKind.name, input: .null, whenDurable: { _ in }))
        _ = job.observe { snapshot in
            guard snapshot.status == .running else { return }
            _ = executor.statistics // takes the pool's lock
            seenRunning.signal()
        }
        executor.start()
        guard seenRunning.wait(timeout: .now() + .seconds(5)) == .success else {
            // Deadlocked: leave the pool alone (draining it would hang too) and fail.
            Issue.record("the running notice was delivered under the pool's lock (deadlock)")
            return
        }
        #expect(job.result(timeout: .seconds(5))?.status == .succeeded)
        executor.drain(grace: .seconds(1))
    }

    /// Races are found by chance: each round is short, so several run.
    @Test("thousands of submit, cancel and retry interleavings leave counts and states in agreement",
          .serialized, .timeLimit(.minutes(2)), arguments: 1...5)
    func submitCancelRetryStress(round: Int) throws {
        let ledger = RunLedger()
        let kind = ScriptedKind(ledger: ledger)
        let maxQueued = 40
        let executor = JobExecutor(
            configuration: .init(workers: 2, maxQueued: maxQueued,
                                 retryBackoff: RetryBackoff(base: .microseconds(200), cap: .milliseconds(2))),
            kinds: [kind], logger: Self.logger)
        executor.start()
        let jobs = Mutex<[Job]>([])
        let refused = Atomic<Int>(0)
        let submittersLeft = Atomic<Int>(2)
        let perSubmitter = 800
        let deadline = ContinuousClock.now + .seconds(60)
        let drivers = DispatchGroup()
        // Two submitters, each until it has 800 jobs accepted (a full queue makes it wait a
        // moment), and one canceller that cancels recent jobs until the submitters are done.
        for driver in 0..<3 {
            drivers.enter()
            Thread {
                defer { drivers.leave() }
                var random = SystemRandomNumberGenerator()
                var accepted = 0
                while ContinuousClock.now < deadline {
                    if driver < 2 {
                        guard accepted < perSubmitter else { break }
                        let delayed = accepted % 7 == 0
                        let options = JobOptions(maxAttempts: 4, runAt: delayed ? Date().addingTimeInterval(0.001) : nil)
                        do {
                            let job = try executor.submit(kind: ScriptedKind.name, input: .integer(accepted), options: options,
                                                          whenDurable: { _ in })
                            if let job { jobs.withLock { $0.append(job) } }
                            accepted += 1
                        } catch {
                            refused.add(1, ordering: .relaxed)
                            Thread.sleep(forTimeInterval: 0.0005)
                        }
                    } else if submittersLeft.load(ordering: .relaxed) == 0 {
                        break
                    }
                    let target = jobs.withLock { list -> Job? in
                        list.isEmpty ? nil : list[list.count - 1 - Int.random(in: 0..<min(list.count, 8), using: &random)]
                    }
                    guard let target, Int.random(in: 0..<3, using: &random) == 0 else { continue }
                    // Once a cancel is acknowledged the attempt no longer changes, so reading it
                    // now gives the runs the job may have had: the running attempt's, or for a
                    // job that was waiting, only the attempts before.
                    switch target.cancel() {
                    case .stopping: ledger.cancelAcknowledged(target.id, allowedRuns: target.attempt)
                    case .cancelled: ledger.cancelAcknowledged(target.id, allowedRuns: target.attempt - 1)
                    case .alreadyFinished: break
                    }
                }
                if driver < 2 { submittersLeft.subtract(1, ordering: .relaxed) }
            }.start()
        }
        #expect(drivers.wait(timeout: .now() + .seconds(90)) == .success, "the drivers did not finish")
        let all = jobs.withLock { $0 }
        #expect(all.count == 2 * perSubmitter, "too few jobs were accepted (\(all.count), \(refused.load(ordering: .relaxed)) refused)")

        // Every job ends: nothing is left queued, scheduled or running for ever.
        #expect(waitUntil(.seconds(30)) { all.allSatisfy(\.isFinished) },
                "\(all.filter { !$0.isFinished }.count) jobs never finished")
        let finals = all.map { $0.snapshot() }
        #expect(ledger.violations.isEmpty, "jobs ran again after a cancel was acknowledged: \(ledger.violations.prefix(5))")
        for snapshot in finals where ledger.wasCancelAcknowledged(snapshot.id) {
            #expect(snapshot.status == .cancelled || snapshot.status == .succeeded,
                    "a cancelled job ended \(snapshot.status) (attempt \(snapshot.attempt))")
        }
        // The slot hand-back, the counters and the worker's bookkeeping run just after a job's
        // state turns final, so they are read once they have settled.
        #expect(waitUntil { executor.statistics.queued == 0 },
                "the pool counts \(executor.statistics.queued) queued jobs in an empty queue")
        #expect(waitUntil { executor.statistics.running == 0 })
        // The per-state counters agree with the jobs themselves.
        var tally: [JobState: Int] = [:]
        for snapshot in finals { tally[snapshot.status, default: 0] += 1 }
        let counted = { () -> [JobState: Int] in
            var counted: [JobState: Int] = [:]
            for (key, count) in executor.counts.snapshot() { counted[key.state, default: 0] += count }
            return counted
        }
        #expect(waitUntil { counted() == tally }, "\(counted()) != \(tally)")
        // And every queue place is free again: with both workers held, exactly `maxQueued`
        // more jobs are taken, and the next is refused.
        var held: [Job] = []
        for _ in 0..<2 { try held.append(#require(try executor.submit(kind: ScriptedKind.name, input: .integer(-1), whenDurable: { _ in }))) }
        #expect(waitUntil { executor.statistics.running == 2 })
        for index in 0..<maxQueued {
            #expect(throws: Never.self, "submission \(index) of \(maxQueued) to an empty queue") {
                if let job = try executor.submit(kind: ScriptedKind.name, input: .integer(-1), whenDurable: { _ in }) { held.append(job) }
            }
        }
        #expect(throws: SubmitError.queueFull(limit: maxQueued)) {
            _ = try executor.submit(kind: ScriptedKind.name, input: .integer(-1), whenDurable: { _ in })
        }
        for job in held { job.cancel() }
        executor.drain(grace: .seconds(1))
    }

    private func waitUntil(_ timeout: Duration = .seconds(5), _ condition: () -> Bool) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while !condition() {
            if ContinuousClock.now > deadline { return false }
            Thread.sleep(forTimeInterval: 0.002)
        }
        return true
    }
}

/// How many times each job's work started, and how many runs a job may have had when its
/// cancel was acknowledged: any run beyond that is a job that was cancelled and ran again.
private final class RunLedger: Sendable {
    private struct State {
        var runs: [JobID: Int] = [:]
        var allowedRuns: [JobID: Int] = [:]
    }
    private let state = Mutex(State())

    func started(_ id: JobID) { state.withLock { $0.runs[id, default: 0] += 1 } }

    func cancelAcknowledged(_ id: JobID, allowedRuns: Int) {
        state.withLock { state in
            state.allowedRuns[id] = min(state.allowedRuns[id] ?? .max, allowedRuns)
        }
    }

    func wasCancelAcknowledged(_ id: JobID) -> Bool { state.withLock { $0.allowedRuns[id] != nil } }

    /// Jobs that ran more often than their cancel allowed.
    var violations: [String] {
        state.withLock { state in
            state.allowedRuns.compactMap { id, allowed in
                let runs = state.runs[id, default: 0]
                return runs > allowed ? "\(id): \(runs) runs, \(allowed) allowed" : nil
            }
        }
    }
}

/// A test kind whose runs take up to a millisecond, stop when asked, and fail in a retryable
/// way half the time, so that runs, retries and cancels interleave.
private struct ScriptedKind: JobKind {
    static let name = "scripted"
    var name: String { Self.name }
    var ledger: RunLedger?

    init(ledger: RunLedger? = nil) { self.ledger = ledger }

    func makeWork(input: JSONValue) throws(InputError) -> JobWork {
        { [ledger] context throws(JobFailure) in
            ledger?.started(context.jobID)
            // -1 holds its worker until cancelled (to fill the pool on purpose).
            if input == .integer(-1) { try context.sleep(for: .seconds(60)) }
            guard ledger != nil else { return .null }
            try context.sleep(for: .microseconds(Int64.random(in: 0...1_000)))
            if Bool.random() { throw JobFailure(code: "timeout", message: "scripted", isRetryable: true) }
            return .null
        }
    }
}
