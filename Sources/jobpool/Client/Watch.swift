import ArgumentParser
import Foundation

/// `jobpool watch ID`: `add_done_callback` at a shell, over `GET /v1/jobs/{id}/events`.
struct Watch: ClientCommand {
    static let configuration = CommandConfiguration(
        abstract: "Follow a job's state changes, one line each, until it finishes.",
        discussion: """
            Prints each state (queued, running, ...) as it happens; with --json (or when standard \
            output is not a terminal), the job as each event carries it. A broken stream is \
            resumed with Last-Event-ID (for up to 15 s, as through a server restart), so no state \
            is printed twice. Exits 0 when the job finished, whatever its state.

            """ + ExitStatus.help)

    @Argument(help: "The job's ID.")
    var id: String

    @OptionGroup var connection: ClientOptions

    /// The server sends a heartbeat every 15 s; this long without a byte means it is gone.
    private static let idleTimeout = Duration.seconds(45)
    /// Tries, a second apart, to resume a broken stream: enough to ride out a server restart.
    private static let resumeAttempts = 15

    func execute(_ client: JobpoolClient, _ output: Output) throws -> ExitStatus {
        var lastEventID: String?
        var finished = false
        var attemptsLeft = Self.resumeAttempts
        while true {
            var parser = ServerSentEvents()
            var progressed = false
            let headers = lastEventID.map { [(name: "Last-Event-ID", value: $0)] } ?? []
            var failure = ClientError(status: .unavailable, message: "the event stream of job \(id) ended before the job finished.")
            do {
                try client.stream("/v1/jobs/\(JobpoolClient.pathSegment(id))/events", headers: headers,
                                  idleTimeout: Self.idleTimeout) { chunk in
                    for event in parser.feed(chunk) {
                        progressed = true
                        lastEventID = event.id ?? lastEventID
                        print(event, to: output)
                        finished = finished || ExitStatus.finished(event.name) != nil
                    }
                }
            } catch let error as ClientError where error.status == .unavailable && lastEventID != nil {
                failure = error
            }
            if finished { return .success }
            // A stream that broke after the final state needs nothing more. It is resumed only once
            // some event came: a server that never answered is an error at once.
            if progressed { attemptsLeft = Self.resumeAttempts }
            guard lastEventID != nil, attemptsLeft > 0 else { throw failure }
            attemptsLeft -= 1
            Thread.sleep(forTimeInterval: 1)
        }
    }

    private func print(_ event: ServerSentEvents.Event, to output: Output) {
        if output.json {
            output.document(Array(event.data.utf8))
            return
        }
        let job = (try? JSONSerialization.jsonObject(with: Data(event.data.utf8))) as? [String: Any] ?? [:]
        output.line(([event.name] + JobText.outcome(job)).joined(separator: "  "))
    }
}
