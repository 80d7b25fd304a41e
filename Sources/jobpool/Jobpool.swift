import ArgumentParser
import JobAPI

/// `jobpool`: Python's ThreadPoolExecutor over HTTP.
@main
struct Jobpool: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jobpool",
        abstract: "A self-hosted job service: submit jobs over HTTP, then poll, wait, or get called back.",
        discussion: "The client commands (submit, get, wait, list, cancel, watch) speak the HTTP API of the server named by --url or JOBPOOL_URL.\n\n" + ExitStatus.help,
        version: JobpoolVersion.current,
        subcommands: [Serve.self, Healthcheck.self, Submit.self, Get.self, Wait.self, List.self, Cancel.self, Watch.self],
        defaultSubcommand: Serve.self
    )
}
