import Foundation
import Testing
@testable import JobCore

@Suite("Priority queue")
struct PriorityQueueTests {
    private func job(_ name: String, priority: Int) -> Job {
        Job(kind: name, input: .null, createdAt: Date(), options: JobOptions(priority: priority)) { _ in .null }
    }

    @Test("highest priority first, FIFO within a priority")
    func order() {
        var queue = PriorityQueue(agingStep: .seconds(10))
        let now = Date()
        for (name, priority) in [("a", 0), ("b", 10), ("c", 0), ("d", -10), ("e", 10)] {
            queue.append(job(name, priority: priority), now: now)
        }
        var order: [String] = []
        while let entry = queue.popFirst(now: now) { order.append(entry.job.kind) }
        #expect(order == ["b", "e", "a", "c", "d"])
        #expect(queue.isEmpty)
    }

    @Test("aging: a low-priority job gains a level per step waited, so it is not starved")
    func aging() {
        var queue = PriorityQueue(agingStep: .seconds(10))
        let start = Date()
        queue.append(job("old-low", priority: -10), now: start)
        // 200 s later it has gained 20 levels: it ties with a fresh priority 10 job and, queued
        // first, goes first.
        let later = start.addingTimeInterval(200)
        queue.append(job("new-high", priority: 10), now: later)
        #expect(queue.popFirst(now: later)?.job.kind == "old-low")
        // Not yet aged enough: 190 s gives 19 levels, one short.
        var fresh = PriorityQueue(agingStep: .seconds(10))
        fresh.append(job("old-low", priority: -10), now: start)
        fresh.append(job("new-high", priority: 10), now: start.addingTimeInterval(190))
        #expect(fresh.popFirst(now: start.addingTimeInterval(190))?.job.kind == "new-high")
    }

    @Test("backoff grows exponentially with jitter, and is capped")
    func backoff() {
        let backoff = RetryBackoff(base: .seconds(2), cap: .seconds(60))
        #expect(backoff.delay(beforeAttempt: 2, random: 1) == .seconds(2))
        #expect(backoff.delay(beforeAttempt: 3, random: 1) == .seconds(4))
        #expect(backoff.delay(beforeAttempt: 4, random: 0.5) == .seconds(4))
        #expect(backoff.delay(beforeAttempt: 20, random: 1) == .seconds(60))
        for _ in 0..<100 {
            let delay = backoff.delay(beforeAttempt: 3)
            #expect(delay >= .seconds(2) && delay <= .seconds(4))
        }
    }
}
