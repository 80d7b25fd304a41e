import ArgumentParser

/// `jobpool wait ID`: `future.result(timeout)`, by long polls of `GET /v1/jobs/{id}?wait=N`.
struct Wait: ClientCommand {
    static let configuration = CommandConfiguration(
        abstract: "Wait for a job to finish; print it and exit by its final state.",
        discussion: ExitStatus.help)

    @Argument(help: "The job's ID.")
    var id: String

    @Option(help: ArgumentHelp("Give up after this many seconds (exit 4). (default: wait as long as it takes)", valueName: "seconds"))
    var timeout: Int?

    @OptionGroup var connection: ClientOptions

    func validate() throws {
        if let timeout, timeout < 0 { throw ValidationError("--timeout must be 0 or more seconds.") }
    }

    func execute(_ client: JobpoolClient, _ output: Output) throws -> ExitStatus {
        let deadline = timeout.map { ContinuousClock.now + .seconds($0) }
        return try client.waitForJob(id, until: deadline).finish(output)
    }
}
