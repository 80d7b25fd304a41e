import Dispatch
import Foundation
import Glibc
import Synchronization
import Testing

extension ClusterTests {
    /// The dead sender's pending delivery is released by the rescue sweep once its lease has
    /// expired, and another node's claim pass resumes it (webhook deliveries claimed across
    /// nodes). Without that, only a restart of some node would load it, and this scenario
    /// fails at "every attempt arrives".
    @Test("5. the sending node is killed while the receiver holds its first attempt: 500, 500, 200 all arrive under one webhook-id, signed")
    func webhookSenderKilled() async throws {
        let hold = DispatchSemaphore(value: 0)
        let count = Mutex(0)
        let script = [500, 500, 200]
        let sink = try FetchTargetServer { _ in
            let index = count.withLock { number in defer { number += 1 }; return number }
            if index == 0 { hold.wait() } // held until the sender is dead
            return (.zero, .page(status: script[min(index, script.count - 1)], body: []))
        }
        defer {
            hold.signal()
            sink.stop()
        }
        let cluster = try JobpoolCluster(nodes: [("A", 2), ("B", 2), ("C", 0)])
        defer { cluster.stop() }
        let c = cluster["C"]
        let id = try await c.submit(Self.writeCode(seconds: 0, hook: "\(sink.url)/hook"))
        #expect(try await eventually(timeout: .seconds(20)) { sink.requestCount == 1 }, "the first attempt never came")
        let senderPID = try cluster.query("""
            SELECT n.pid FROM job_attempt_history a JOIN nodes n ON n.id = a.node WHERE a.job_id = $1::uuid AND a.outcome = 'succeeded'
            """, [id]).first?.int("pid")
        let sender = try #require(cluster.nodes.first { $0.pid.map(Int.init) == senderPID }, "which node ran the job?")
        sender.kill9()
        hold.signal() // its 500 goes to a closed connection

        // Another node takes the delivery over once the dead sender's lease expires (3 s), and
        // follows the schedule (1 s apart): the second 500, then the 200.
        let arrived = try await eventually(timeout: .seconds(30)) {
            sink.received.count >= 3 && count.withLock { $0 } >= 3
        }
        #expect(arrived, "attempts that arrived: \(sink.requestCount)\n\(cluster.logs)")
        let requests = sink.received
        #expect(Set(requests.map { $0.headers["webhook-id"] ?? "" }).count == 1, "one webhook-id for every attempt")
        #expect(Set(requests.map(\.body)).count == 1, "the event body is frozen")
        for request in requests { #expect(try verifyWebhookSignature(request, secret: Self.secret)) }
        #expect(try await eventually(timeout: .seconds(15)) {
            (try await c.client.get("/v1/jobs/\(id)").json["webhook"] as? [String: Any])?["state"] as? String == "delivered"
        }, "the delivery never reached delivered")
    }
}
