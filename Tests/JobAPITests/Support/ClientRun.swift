import Foundation

/// One run of a `jobpool` client command (the real binary) to its end: its exit status and
/// what it wrote. It runs on its own thread (``onThread``), so a long `wait` holds none of the
/// few threads the async tests share.
struct ClientRun: Sendable {
    var status: Int32
    var stdout: String
    var stderr: String

    /// Standard output's lines, without empty ones.
    var lines: [String] { stdout.split(separator: "\n").map(String.init) }

    /// Everything the run wrote.
    var output: String { stdout + stderr }

    /// Each line of standard output as a JSON object (parsed by Foundation); nil for a line
    /// that is not one.
    var documents: [[String: Any]?] {
        lines.map { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }
    }

    /// Runs `jobpool arguments` with standard output and error going to files (so not a
    /// terminal). The environment holds only `PATH` and `environment`, so that no `JOBPOOL_*`
    /// variable of the test's own reaches it.
    static func run(_ arguments: [String], environment: [String: String] = [:], input: String? = nil,
                    timeout: Duration = .seconds(90)) async throws -> ClientRun {
        try await run(executable: JobpoolProcess.binary, arguments, environment: environment, input: input, timeout: timeout)
    }

    /// Runs `jobpool arguments` under a pseudo-terminal made by Python's `pty` module, as a
    /// person at a shell would: standard output and error both go to the terminal, so
    /// `stdout` holds both, with the terminal's `\r\n` turned back into `\n`.
    static func runInTerminal(_ arguments: [String], environment: [String: String] = [:],
                              timeout: Duration = .seconds(90)) async throws -> ClientRun {
        var run = try await run(executable: "/usr/bin/python3", ["-c", Self.ptyScript, JobpoolProcess.binary] + arguments,
                                environment: environment, input: nil, timeout: timeout)
        run.stdout = run.stdout.replacingOccurrences(of: "\r\n", with: "\n")
        return run
    }

    /// Starts the command in a new pseudo-terminal, copies all it writes there to standard
    /// output, and exits with its exit code.
    private static let ptyScript = """
        import os, pty, sys
        pid, fd = pty.fork()
        if pid == 0:
            os.execv(sys.argv[1], sys.argv[1:])
        chunks = []
        while True:
            try:
                data = os.read(fd, 65536)
            except OSError:  # EIO: the command has exited and closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        _, status = os.waitpid(pid, 0)
        sys.stdout.buffer.write(b"".join(chunks))
        sys.exit(os.waitstatus_to_exitcode(status))
        """

    private static func run(executable: String, _ arguments: [String], environment: [String: String], input: String?,
                            timeout: Duration) async throws -> ClientRun {
        guard FileManager.default.isExecutableFile(atPath: JobpoolProcess.binary) else {
            throw TestFailure("\(JobpoolProcess.binary) is missing: build it first (swift build, or Tests/run.sh)")
        }
        let result: Result<ClientRun, TestFailure> = await onThread {
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("jobpool-client-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: folder) }
            do {
                try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
                let out = folder.appendingPathComponent("stdout"), err = folder.appendingPathComponent("stderr")
                try Data().write(to: out)
                try Data().write(to: err)
                let process = Process()
                process.executableURL = URL(fileURLWithPath: executable)
                process.arguments = arguments
                process.environment = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"]
                    .merging(environment) { $1 }
                process.standardOutput = try FileHandle(forWritingTo: out)
                process.standardError = try FileHandle(forWritingTo: err)
                let stdin = Pipe()
                process.standardInput = input == nil ? FileHandle.nullDevice : stdin
                let exited = DispatchSemaphore(value: 0)
                process.terminationHandler = { _ in exited.signal() }
                try process.run()
                if let input {
                    stdin.fileHandleForWriting.write(Data(input.utf8))
                    try stdin.fileHandleForWriting.close()
                }
                let seconds = Double(timeout.components.seconds)
                guard exited.wait(timeout: .now() + seconds) == .success else {
                    kill(process.processIdentifier, SIGKILL)
                    return .failure(TestFailure("jobpool \(arguments) did not exit within \(timeout)"))
                }
                return .success(ClientRun(status: process.terminationStatus,
                                          stdout: try String(contentsOf: out, encoding: .utf8),
                                          stderr: try String(contentsOf: err, encoding: .utf8)))
            } catch {
                return .failure(TestFailure("could not run jobpool \(arguments): \(error)"))
            }
        }
        return try result.get()
    }
}
