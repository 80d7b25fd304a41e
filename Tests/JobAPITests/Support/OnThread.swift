import Foundation

/// Runs blocking work (socket reads) on its own thread, so that it does not hold one of the
/// few cooperative threads the async tests share.
func onThread<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        Thread { continuation.resume(returning: work()) }.start()
    }
}

extension TestHTTPClient.Response {
    /// A member of the body's `error` object.
    func errorMember(_ name: String) -> Any? { (json["error"] as? [String: Any])?[name] }
}
