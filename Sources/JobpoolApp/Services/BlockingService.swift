/// A long-lived part of the server, started in dependency order and stopped in reverse, either
/// one after another by ``JobpoolServer/start()`` and ``JobpoolServer/shutdown()`` or as
/// swift-service-lifecycle services by ``JobpoolServer/run()``.
///
/// A start only starts threads: whatever can fail (taking the store's lock, binding the ports,
/// recovering stored work) happened before, in `init` and ``JobpoolServer/open()``, so a start
/// cannot fail halfway. No part starts a thread from its `init`.
protocol BlockingService: Sendable {
    /// How logs name the service.
    var name: String { get }

    /// Starts the service's threads; returns once it runs. Called once.
    func start()

    /// Stops the service, finishing or handing on its work; blocks until it has stopped (each
    /// part bounds how long). Called once, after ``start()``, and after every service started
    /// later has stopped.
    func stop()
}
