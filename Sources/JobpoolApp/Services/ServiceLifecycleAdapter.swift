import Foundation
import ServiceLifecycle

/// Runs a ``BlockingService`` as a swift-service-lifecycle `Service`.
///
/// A `ServiceGroup` starts every service's `run()` at once and stops them one by one in
/// reverse order. The reverse stop is what jobpool needs; the start must be ordered too, so
/// each service starts only once the one before it has started (``StartGate``). The blocking
/// start and stop run on a thread of their own, never on the cooperative pool, which a drain of
/// up to `--shutdown-grace` seconds would otherwise hold.
struct ServiceLifecycleAdapter: Service, CustomStringConvertible {
    let service: any BlockingService
    /// Opens when the service before this one has started; nil for the first.
    let previousStarted: StartGate?
    /// Opened once this service has started.
    let started: StartGate

    var description: String { service.name }

    func run() async throws {
        await previousStarted?.wait()
        await Self.onOwnThread(named: "jobpool-start") { service.start() }
        started.open()
        // Returns on the group's graceful shutdown; throws if the group is cancelled instead.
        // Either way the service stops, so that nothing is left running.
        try? await gracefulShutdown()
        await Self.onOwnThread(named: "jobpool-stop") { service.stop() }
    }

    private static func onOwnThread(named name: String, _ work: @escaping @Sendable () -> Void) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let thread = Thread {
                work()
                continuation.resume()
            }
            thread.name = name
            thread.start()
        }
    }
}
