import Foundation

/// How long a job waits before its next attempt after a retryable failure: exponential, with
/// jitter so that jobs that failed together (a target that went down) do not return together.
public struct RetryBackoff: Sendable, Hashable {
    /// The wait before the second attempt, before jitter.
    public var base: Duration
    /// The longest wait.
    public var cap: Duration

    public init(base: Duration = .seconds(2), cap: Duration = .seconds(300)) {
        self.base = base
        self.cap = cap
    }

    /// The wait before `attempt` (2 or more): `base × 2^(attempt-2)`, capped, then scaled by a
    /// random factor in [0.5, 1] ("equal jitter": spread out, yet never near zero).
    public func delay(beforeAttempt attempt: Int, random: Double = Double.random(in: 0.5...1)) -> Duration {
        let exponent = min(max(attempt - 2, 0), 30)
        let seconds = min(base.seconds * pow(2, Double(exponent)), cap.seconds)
        return .milliseconds(Int64((seconds * random * 1000).rounded()))
    }
}

