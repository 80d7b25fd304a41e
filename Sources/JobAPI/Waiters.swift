import EventHTTP
import JobCore
import Synchronization

/// Requests parked until their job finishes or their wait runs out, without holding a thread:
/// each is an entry here plus a loop timer, and the job's done-callback wakes the loop through
/// ``EventLoop/execute(_:)``. Loop thread only.
final class WaiterTable {
    /// Answers a parked request. `finished` is true when the job finished before the deadline.
    typealias Reply = (_ request: HTTPRequest, _ job: JobSnapshot, _ finished: Bool) -> Void

    private struct Waiter {
        var request: HTTPRequest
        var job: Job
        var timer: LoopTimer
        var reply: Reply
    }

    private let loop: EventLoop
    private var waiters: [Int: Waiter] = [:]
    private var nextToken = 0
    /// The most requests that may wait at once.
    let limit: Int
    /// The number parked, readable from any thread (for statistics and tests).
    let gauge: WaiterGauge

    init(loop: EventLoop, limit: Int, gauge: WaiterGauge) {
        self.loop = loop
        self.limit = limit
        self.gauge = gauge
    }

    var count: Int { waiters.count }
    var isFull: Bool { waiters.count >= limit }

    /// Parks `request` until `job` finishes or `timeout` passes, then calls `reply` once.
    func park(_ request: HTTPRequest, on job: Job, timeout: Duration, reply: @escaping Reply) {
        let token = nextToken
        nextToken += 1
        let timer = loop.schedule(after: timeout) { [unowned self] in complete(token, finished: false) }
        waiters[token] = Waiter(request: request, job: job, timer: timer, reply: reply)
        gauge.set(waiters.count)
        let table = LoopBound(self, on: loop)
        let loop = self.loop
        job.addDoneCallback { _ in
            loop.execute { table.value.complete(token, finished: true) }
        }
    }

    /// Answers every parked request with its job as it stands (at the end of a drain).
    func completeAll() {
        for token in waiters.keys.sorted() { complete(token, finished: false) }
    }

    private func complete(_ token: Int, finished: Bool) {
        guard let waiter = waiters.removeValue(forKey: token) else { return } // answered already
        gauge.set(waiters.count)
        waiter.timer.cancel()
        let snapshot = waiter.job.snapshot()
        waiter.reply(waiter.request, snapshot, finished || snapshot.status.isFinished)
    }
}

/// How many requests are parked, published by the loop thread for any thread to read.
public final class WaiterGauge: Sendable {
    private let count = Atomic<Int>(0)

    public init() {}

    public var value: Int { count.load(ordering: .relaxed) }

    func set(_ value: Int) { count.store(value, ordering: .relaxed) }
}
