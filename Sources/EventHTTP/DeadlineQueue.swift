/// Keys in the order their deadlines fall, where every deadline is "now plus the same
/// duration": adding a key (again) moves it to the back, so the front always has the earliest
/// deadline. Insert, remove, move and pop are O(1) (a doubly linked list threaded through a
/// dictionary), so the gate can re-arm a connection on every reply without the queue growing.
///
/// ```swift
/// var queue = DeadlineQueue<Int>()
/// queue.arm(7, deadline: .now + .seconds(15))
/// if let (key, deadline) = queue.first, deadline <= .now { queue.remove(key) }
/// ```
struct DeadlineQueue<Key: Hashable> {
    private struct Node {
        var deadline: ContinuousClock.Instant
        var previous: Key?
        var next: Key?
    }

    private var nodes: [Key: Node] = [:]
    private var head: Key?
    private var tail: Key?

    var isEmpty: Bool { nodes.isEmpty }
    var count: Int { nodes.count }

    /// The key with the earliest deadline.
    var first: (key: Key, deadline: ContinuousClock.Instant)? {
        guard let head, let node = nodes[head] else { return nil }
        return (head, node.deadline)
    }

    func contains(_ key: Key) -> Bool { nodes[key] != nil }

    /// Gives `key` this deadline and moves it to the back. `deadline` must not be earlier than
    /// any deadline already queued.
    mutating func arm(_ key: Key, deadline: ContinuousClock.Instant) {
        remove(key)
        nodes[key] = Node(deadline: deadline, previous: tail, next: nil)
        if let tail { nodes[tail]?.next = key } else { head = key }
        tail = key
    }

    /// Takes `key` out, if it is queued.
    mutating func remove(_ key: Key) {
        guard let node = nodes.removeValue(forKey: key) else { return }
        if let previous = node.previous { nodes[previous]?.next = node.next } else { head = node.next }
        if let next = node.next { nodes[next]?.previous = node.previous } else { tail = node.previous }
    }

    /// Takes out and returns the key with the earliest deadline.
    mutating func popFirst() -> Key? {
        guard let head else { return nil }
        remove(head)
        return head
    }

    mutating func removeAll() {
        nodes = [:]
        head = nil
        tail = nil
    }
}
