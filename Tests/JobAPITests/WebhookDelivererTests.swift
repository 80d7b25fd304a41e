import Foundation
import Logging
import OutboundHTTP
import Synchronization
import Testing
import Webhooks
@testable import JobCore

/// The deliverer against a store that answers as a shared store does: the sink listens on
/// 127.0.0.1, the store is a closure.
@Suite("Webhook deliverer: what it tells once the store has answered")
struct WebhookDelivererTests {
    @Test("an attempt the store refuses as stale (the event moved to another node) is told nowhere: the job's webhook stays pending, nothing is counted settled")
    func staleAttemptIsToldNowhere() async throws {
        let sink = try FetchTargetServer(host: "127.0.0.1") { _ in (.zero, .page(status: 200, body: [])) }
        defer { sink.stop() }
        let refused = Mutex(0)
        let client = OutboundHTTPClient(configuration: .init(policy: AddressPolicy(allowed: [CIDR("127.0.0.1/32")!])))
        let deliverer = WebhookDeliverer(configuration: .init(), client: client, logger: Logger(label: "test"), persist: { change, durable in
            guard case .webhookAttempted = change else { return durable?(.success(())) ?? () }
            refused.withLock { $0 += 1 }
            durable?(.failure(StoreError("the event is another node's now", isStale: true)))
        }, renderBody: { type, _ in Array(#"{"type":"\#(type)"}"#.utf8) })
        deliverer.start()
        defer { deliverer.stop() }
        let record = JobRecord(id: JobID(), kind: "write_code", input: .null, status: .succeeded, result: .null, createdAt: Date(),
                               startedAt: Date(), finishedAt: Date(), webhook: WebhookTarget(url: "\(sink.url)/hook", key: Array("key".utf8)))
        let job = Job(restoring: record, webhookStatus: WebhookStatus(url: "\(sink.url)/hook", state: .pending, attempts: 0),
                      onStateChange: nil, work: { _ throws(JobFailure) in .null })
        deliverer.eventCommitted(deliverer.makeEvent(for: job, final: job.snapshot()), job: job)
        #expect(try await eventually { sink.requestCount == 1 && refused.withLock { $0 } == 1 })
        // The receiver answered 200, but the store never recorded it from this node.
        #expect(try await !eventually(timeout: .milliseconds(500)) { job.snapshot().webhook?.state != .pending })
        #expect(deliverer.deliveryCounts()[.delivered] == nil)
    }

    @Test("a second redelivery while the first is being stored waits for the same answer: both are told it was refused")
    func secondRedeliveryWaitsForTheFirst() throws {
        let pending = Mutex<[@Sendable (Result<Void, StoreError>) -> Void]>([])
        let client = OutboundHTTPClient(configuration: .init(policy: AddressPolicy(allowed: [CIDR("127.0.0.1/32")!])))
        let deliverer = WebhookDeliverer(configuration: .init(), client: client, logger: Logger(label: "test"), persist: { change, durable in
            guard case .webhookRedelivered = change, let durable else { return durable?(.success(())) ?? () }
            pending.withLock { $0.append(durable) } // answered by the test
        }, renderBody: { type, _ in Array(#"{"type":"\#(type)"}"#.utf8) })
        let record = JobRecord(id: JobID(), kind: "write_code", input: .null, status: .succeeded, result: .null, createdAt: Date(),
                               startedAt: Date(), finishedAt: Date(), webhook: WebhookTarget(url: "http://127.0.0.1:9/hook", key: Array("key".utf8)))
        let job = Job(restoring: record, webhookStatus: WebhookStatus(url: "http://127.0.0.1:9/hook", state: .delivered, attempts: 1),
                      onStateChange: nil, work: { _ throws(JobFailure) in .null })
        var event = deliverer.makeEvent(for: job, final: job.snapshot())
        event.state = .delivered
        _ = deliverer.restore([event], schedulePending: false) { _ in job }
        let told = Mutex<[Bool]>([])
        #expect(deliverer.redeliver(jobID: job.id) { stored in told.withLock { $0.append(stored) } } == .queued)
        #expect(deliverer.redeliver(jobID: job.id) { stored in told.withLock { $0.append(stored) } } == .queued,
                "not answered before the first is stored")
        let durable = try #require(pending.withLock { $0.first })
        #expect(pending.withLock { $0.count } == 1, "one write for both")
        durable(.failure(StoreError("the event is another node's now", isStale: true)))
        #expect(told.withLock { $0 } == [false, false])
    }
}
