import DequeModule
import JobCore

/// The last `capacity` job changes, numbered by global, increasing event IDs: what a stream
/// that reconnects with `Last-Event-ID` is sent again. Owned by the loop thread.
///
/// In process, the window numbers changes itself, one after another. On a store that logs
/// events for the whole cluster (PostgreSQL) the IDs are the log's, the same on every node:
/// increasing, but with holes (a rolled-back transaction's), so entries are found by binary
/// search rather than by offset.
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
    /// The ID the next change gets, or (for logged events) more than every ID held. In
    /// process it starts from the clock (milliseconds × 1000), so that IDs from an earlier
    /// process are lower than any of this one's and read as "before the window", rather than
    /// being taken for a different event of this process.
    private(set) var nextID: Int
    /// The newest ID pushed out (or the one before the first): a stream may resume after any
    /// ID from here on.
    private(set) var droppedThrough: Int

    init(capacity: Int, firstID: Int) {
        self.capacity = max(1, capacity)
        self.nextID = firstID
        self.droppedThrough = firstID - 1
    }

    /// The newest event's ID (or the one before the first, while empty).
    var newestID: Int { nextID - 1 }
    /// The oldest ID still held.
    var oldestID: Int { entries.first?.id ?? nextID }

    /// Numbers a change made in this process.
    mutating func append(_ change: JobChange) {
        append(RecordedChange(change), id: nextID)
    }

    /// Keeps a logged event under its own ID; one not newer than the newest is ignored.
    mutating func append(_ event: StoredJobEvent) {
        guard event.id >= nextID else { return }
        append(RecordedChange(event), id: event.id)
    }

    private mutating func append(_ change: RecordedChange, id: Int) {
        if entries.count == capacity, let dropped = entries.popFirst() { droppedThrough = dropped.id }
        entries.append(Entry(id: id, change: change))
        nextID = id + 1
    }

    /// The store's log skipped its events through `id`, unread: what the window holds is no
    /// longer followed by the next event, so it starts again after `id`.
    mutating func skip(through id: Int) {
        guard id > newestID else { return }
        entries.removeAll()
        droppedThrough = id
        nextID = id + 1
    }

    /// True when every event after `id` is still held (or `id` is the newest).
    func canResume(after id: Int) -> Bool {
        id >= droppedThrough && id <= newestID
    }

    /// The rendered events after `id` (up to `last`, or the newest) that `filter` lets
    /// through, concatenated.
    mutating func render(after id: Int, through last: Int? = nil, matching filter: EventFilter) -> [UInt8] {
        var chunk: [UInt8] = []
        let start = firstIndex(after: id)
        let end = firstIndex(after: last ?? newestID)
        guard start < end else { return chunk }
        for index in start..<end where filter.matches(entries[index].change) {
            if entries[index].bytes == nil { entries[index].bytes = Self.render(entries[index]) }
            chunk += entries[index].bytes!
        }
        return chunk
    }

    /// The index of the first entry whose ID is greater than `id` (binary search).
    private func firstIndex(after id: Int) -> Int {
        var low = 0
        var high = entries.count
        while low < high {
            let middle = (low + high) / 2
            if entries[middle].id <= id { low = middle + 1 } else { high = middle }
        }
        return low
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
