import ArgumentParser
import JobAPI

/// `jobpool`: Python's ThreadPoolExecutor over HTTP.
@main
struct Jobpool: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jobpool",
        abstract: "A self-hosted job service: submit jobs over HTTP, then poll, wait, or get called back.",
        version: JobpoolVersion.current,
        subcommands: [Serve.self, Healthcheck.self],
        defaultSubcommand: Serve.self
    )
}
