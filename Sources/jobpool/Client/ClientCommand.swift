import ArgumentParser

/// A client subcommand (`submit`, `get`, `wait`, `list`, `cancel`, `watch`): it runs against the
/// server, and a ``ClientError`` becomes a message on standard error and its exit code.
protocol ClientCommand: ParsableCommand {
    var connection: ClientOptions { get }

    /// Runs the command; returns how it ends (``ExitStatus/success`` unless it waits for a job).
    func execute(_ client: JobpoolClient, _ output: Output) throws -> ExitStatus
}

extension ClientCommand {
    func run() throws {
        let status: ExitStatus
        do {
            status = try execute(try connection.makeClient(), Output(json: connection.printsJSON))
        } catch let error as ClientError {
            Output.error(error.message)
            throw ExitCode(error.status.rawValue)
        }
        if status != .success { throw ExitCode(status.rawValue) }
    }
}
