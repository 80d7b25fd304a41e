import Foundation
import Testing
@testable import JobCore

@Suite("Job counts")
struct JobCountsTests {
    private static func key(_ state: JobState, owner: String? = nil) -> JobCounts.Key {
        JobCounts.Key(owner: owner, kind: "test", state: state)
    }

    @Test("jobs counted in their stripes, stored counts seeded and removed apart from them, add up to the totals")
    func stripesAddUp() {
        let counts = JobCounts()
        // Stored before the start: 5 succeeded jobs of one owner, 2 failed ones without.
        counts.seed([Self.key(.succeeded, owner: "ada"): 5, Self.key(.failed): 2])
        // 100 jobs of that owner run through: each one's changes go to its own stripe.
        let jobs = (0..<100).map { _ in
            Job(kind: "test", input: .null, createdAt: Date(), owner: "ada", onStateChange: counts.hook) { _ in .null }
        }
        for job in jobs {
            counts.hook(job, .queued, .running)
            counts.hook(job, .running, .succeeded)
        }
        // Retention deletes 30 succeeded jobs by key alone, whichever stripes counted them.
        for _ in 0..<30 { counts.removed(Self.key(.succeeded, owner: "ada")) }
        // One job refused after all.
        counts.removed(jobs[0], state: .succeeded)

        #expect(counts.snapshot() == [Self.key(.succeeded, owner: "ada"): 74, Self.key(.failed): 2])
        #expect(counts.snapshot(owner: "ada") == [Self.key(.succeeded, owner: "ada"): 74])
        #expect(counts.snapshot(owner: .some(nil)) == [Self.key(.failed): 2])
    }
}
