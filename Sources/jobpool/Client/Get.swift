import ArgumentParser

/// `jobpool get ID`: `GET /v1/jobs/{id}`, `future.done()` with the job as it stands.
struct Get: ClientCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a job as it stands.",
        discussion: "Exits 0 when the job was read, whatever its state.\n\n" + ExitStatus.help)

    @Argument(help: "The job's ID.")
    var id: String

    @OptionGroup var connection: ClientOptions

    func execute(_ client: JobpoolClient, _ output: Output) throws -> ExitStatus {
        output.job(try client.send("GET", "/v1/jobs/\(JobpoolClient.pathSegment(id))"))
        return .success
    }
}
