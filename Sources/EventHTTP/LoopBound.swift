/// Carries a loop-thread-only value through a `@Sendable` closure that will run back on the
/// same loop, such as the work given to ``EventLoop/execute(_:)``.
///
/// This is the one sanctioned hole in Sendable checking for loop-owned state: the value may be
/// read only on its loop's thread, which ``value`` checks in debug builds.
public struct LoopBound<Value>: @unchecked Sendable {
    private let wrapped: Value
    private let loop: EventLoop

    public init(_ value: Value, on loop: EventLoop) {
        self.wrapped = value
        self.loop = loop
    }

    /// The value. Call on the loop thread only.
    public var value: Value {
        assert(loop.isOnLoopThread, "LoopBound value read off its loop thread")
        return wrapped
    }
}
