import Foundation
import JobCore
import Testing
@testable import JobAPI

/// The replay window with the IDs of a store's event log (PostgreSQL): increasing, with holes.
@Suite("Replay window with logged event IDs")
struct ReplayWindowTests {
    func event(_ id: Int, status: JobState = .succeeded) -> StoredJobEvent {
        StoredJobEvent(id: id, jobID: JobID(), kind: "write_code", owner: nil, event: .succeeded, status: status, at: Date(),
                       attempt: 1, maxAttempts: 3)
    }

    func ids(_ bytes: [UInt8]) -> [Int] {
        String(decoding: bytes, as: UTF8.self).split(separator: "\n").compactMap { line in
            line.hasPrefix("id: ") ? Int(line.dropFirst(4)) : nil
        }
    }

    @Test("events keep their own IDs; resuming after any ID, inside a hole too, sends exactly the later ones")
    func holes() {
        var window = ReplayWindow(capacity: 4, firstID: 11)
        for id in [11, 12, 15, 20] { window.append(event(id)) }
        window.append(event(15)) // not newer than the newest: ignored
        #expect(window.newestID == 20 && window.oldestID == 11)
        let all = EventFilter()
        #expect(ids(window.render(after: 10, matching: all)) == [11, 12, 15, 20])
        #expect(ids(window.render(after: 13, matching: all)) == [15, 20], "an ID in a hole resumes after it")
        #expect(ids(window.render(after: 12, through: 15, matching: all)) == [15])
        #expect(ids(window.render(after: 20, matching: all)).isEmpty)
        window.append(event(23))
        #expect(window.oldestID == 12 && window.droppedThrough == 11)
        #expect(!window.canResume(after: 10), "event 11 is gone")
        #expect(window.canResume(after: 11) && window.canResume(after: 21))
        var failedOnly = EventFilter()
        failedOnly.statuses = [.failed]
        window.append(event(30, status: .failed))
        #expect(ids(window.render(after: 12, matching: failedOnly)) == [30])
    }

    @Test("events the log skipped unread end what the window held: it starts again after them")
    func skipped() {
        var window = ReplayWindow(capacity: 10, firstID: 11)
        for id in [11, 12] { window.append(event(id)) }
        window.skip(through: 12)
        #expect(window.canResume(after: 11), "skipping nothing new changes nothing")
        window.skip(through: 40)
        #expect(!window.canResume(after: 12), "events 13 to 40 were never read")
        #expect(window.canResume(after: 40) && window.newestID == 40)
        window.append(event(38))
        window.append(event(41))
        #expect(ids(window.render(after: 40, matching: EventFilter())) == [41])
    }
}
