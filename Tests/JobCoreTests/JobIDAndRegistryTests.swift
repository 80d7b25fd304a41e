import Foundation
import Logging
import Testing
@testable import JobCore

@Suite("Job IDs and listing")
struct JobIDAndRegistryTests {
    @Test("IDs are version 7 UUIDs: the time first, then random bits; they round-trip through text")
    func jobIDs() throws {
        var seen = Set<JobID>()
        let now = Date(timeIntervalSince1970: 1_764_806_400.123) // 2025-12-04T00:00:00.123Z
        #expect(JobID(now: now).description.hasPrefix("019ae6a8-987b-7"), "\(JobID(now: now))")
        for _ in 0..<1000 {
            let id = JobID()
            let text = id.description
            #expect(text.count == 36)
            #expect(Array(text)[14] == "7")
            #expect("89ab".contains(Array(text)[19]))
            #expect(JobID(text) == id)
            #expect(JobID(text.uppercased()) == id)
            #expect(UUID(uuidString: text) == id.uuid)
            seen.insert(id)
        }
        #expect(seen.count == 1000)
    }

    @Test("malformed IDs are rejected", arguments: [
        "", "abc", "00000000-0000-0000-0000-00000000000", "00000000-0000-0000-0000-0000000000000",
        "00000000x0000-0000-0000-000000000000", "g0000000-0000-0000-0000-000000000000", "../../etc/passwd",
    ])
    func malformedIDs(text: String) {
        #expect(JobID(text) == nil)
    }

    @Test("lists page newest first by (created_at, id) with no job missed or repeated")
    func paging() throws {
        let executor = JobExecutor(configuration: .init(workers: 1, maxQueued: 100), kinds: [WriteCode()],
                                   logger: Logger(label: "test"))
        // Not started: jobs stay queued, which is all listing needs.
        var submitted: [JobID] = []
        for index in 0..<23 {
            // The memory store makes a job durable at once, so submit returns it.
            let job = try executor.submit(kind: "write_code", input: .object(["name": .string("n\(index)")])) { _ in }
            submitted.append(try #require(job).id)
        }
        var listed: [JobID] = []
        var cursor: JobCursor?
        repeat {
            let page = try executor.list(limit: 5, after: cursor)
            #expect(page.jobs.count <= 5)
            listed += page.jobs.map(\.id)
            cursor = page.nextCursor
        } while cursor != nil
        #expect(listed == submitted.reversed())
        #expect(try executor.list(filter: JobFilter(status: .succeeded)).jobs.isEmpty)
        #expect(try executor.list(filter: JobFilter(status: .queued), limit: 500).jobs.count == 23)
    }
}
