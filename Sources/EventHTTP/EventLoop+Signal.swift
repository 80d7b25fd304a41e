import CLibevent
import Glibc

/// Holds a signal handler's closure for as long as the loop lives.
private final class SignalHandlerBox {
    let body: () -> Void
    var event: OpaquePointer?
    init(body: @escaping () -> Void) { self.body = body }
}

extension EventLoop {
    /// Runs `body` on the loop thread each time signal `number` arrives. Call on the loop thread.
    /// The handler stays installed for the life of the process.
    public func onSignal(_ number: Int32, _ body: @escaping () -> Void) {
        // A parent may have started us with the signal blocked (blocked masks are inherited);
        // libevent's handler would then never run.
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, number)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
        let box = SignalHandlerBox(body: body)
        let context = Unmanaged.passRetained(box).toOpaque() // kept for the process's lifetime
        box.event = event_new(base, number, Int16(EV_SIGNAL | EV_PERSIST), eventLoopSignalCallback, context)
        event_add(box.event, nil)
    }
}

private func eventLoopSignalCallback(_ fd: Int32, _ what: Int16, _ context: UnsafeMutableRawPointer?) {
    guard let context else { return }
    Unmanaged<SignalHandlerBox>.fromOpaque(context).takeUnretainedValue().body()
}
