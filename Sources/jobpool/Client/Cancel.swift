import ArgumentParser

/// `jobpool cancel ID`: `POST /v1/jobs/{id}/cancel`, `future.cancel()`.
struct Cancel: ClientCommand {
    static let configuration = CommandConfiguration(
        abstract: "Cancel a job; print it as the server answered.",
        discussion: """
            A scheduled or queued job is cancelled at once; a running one is asked to stop, and the \
            server waits up to 5 s for it. A finished job cannot be cancelled (exit 6). Exits 0 when \
            the request succeeded.

            """ + ExitStatus.help)

    @Argument(help: "The job's ID.")
    var id: String

    @OptionGroup var connection: ClientOptions

    func execute(_ client: JobpoolClient, _ output: Output) throws -> ExitStatus {
        output.job(try client.send("POST", "/v1/jobs/\(JobpoolClient.pathSegment(id))/cancel", body: []))
        return .success
    }
}
