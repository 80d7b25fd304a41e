import DequeModule
import JobCore

/// The last `capacity` job changes, numbered by global, increasing event IDs: what a stream
/// that reconnects with `Last-Event-ID` is sent again. Owned by the loop thread.
///
/// Each change is rendered into its SSE bytes at most once, when the first stream needs it;
/// while no stream watches, a change costs only its place here.
struct ReplayWindow {
    struct Entry {
        let id: Int
        let change: RecordedChange
        /// `id:`, `event:` and `data:` lines, rendered on first use.
        var bytes: [UInt8]?
    }

    let capacity: Int
    private var entries = Deque<Entry>()
    /// The ID the next change gets. It starts from the clock (milliseconds × 1000), so that IDs
    /// from an earlier process are lower than any of this one's and read as "before the
    /// window", rather than being taken for a different event of this process.
    private(set) var nextID: Int

    init(capacity: Int, firstID: Int) {
        self.capacity = max(1, capacity)
        self.nextID = firstID
    }

    /// The newest event's ID (or the one before the first, while empty).
    var newestID: Int { nextID - 1 }
    /// The oldest ID still held.
    var oldestID: Int { entries.first?.id ?? nextID }

    mutating func append(_ change: JobChange) {
        if entries.count == capacity { entries.removeFirst() }
        entries.append(Entry(id: nextID, change: RecordedChange(change)))
        nextID += 1
    }

    /// True when every event after `id` is still held (or `id` is the newest).
    func canResume(after id: Int) -> Bool {
        id >= oldestID - 1 && id <= newestID
    }

    /// The rendered events after `id` (up to `last`, or the newest) that `filter` lets
    /// through, concatenated.
    mutating func render(after id: Int, through last: Int? = nil, matching filter: EventFilter) -> [UInt8] {
        var chunk: [UInt8] = []
        let start = max(0, id + 1 - oldestID)
        let end = min(entries.count, (last ?? newestID) + 1 - oldestID)
        guard start < end else { return chunk }
        for index in start..<end where filter.matches(entries[index].change) {
            if entries[index].bytes == nil { entries[index].bytes = Self.render(entries[index]) }
            chunk += entries[index].bytes!
        }
        return chunk
    }

    private static func render(_ entry: Entry) -> [UInt8] {
        var writer = JSONWriter()
        writer.jobChange(entry.change)
        var bytes = Array("id: \(entry.id)\nevent: \(entry.change.event.rawValue)\ndata: ".utf8)
        bytes += writer.bytes // JSONWriter escapes control characters: one data line
        bytes += [UInt8(ascii: "\n"), UInt8(ascii: "\n")]
        return bytes
    }
}
