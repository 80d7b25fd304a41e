import Foundation
import Testing

/// Where the client finds its server and API key, and that the key never shows.
@Suite("The command-line client's configuration", .serialized)
struct ClientConfigurationTests {
    @Test("JOBPOOL_URL and JOBPOOL_API_KEY are honoured; --api-key-file, then JOBPOOL_API_KEY, then --api-key; the key never shows")
    func urlAndKey() async throws {
        let key = "cli-key-\(UUID().uuidString)"
        let server = try JobpoolProcess(["serve", "--port", "0", "--store", "memory", "--api-key", key])
        defer { server.stop() }
        let url = "http://127.0.0.1:\(try server.waitUntilListening())"
        let keyFile = FileManager.default.temporaryDirectory.appendingPathComponent("jobpool-key-\(UUID().uuidString)")
        try Data("# the test's key\n\n\(key)\n".utf8).write(to: keyFile)
        defer { try? FileManager.default.removeItem(at: keyFile) }
        let wrong = "wrong-key-\(UUID().uuidString)"
        let quick = #"{"name":"alex","max_seconds":0}"#
        var runs: [ClientRun] = []

        let fromEnvironment = try await ClientRun.run(["submit", "write_code", "--input", quick, "--wait", "10"],
                                                      environment: ["JOBPOOL_URL": url, "JOBPOOL_API_KEY": key])
        #expect(fromEnvironment.status == 0, "URL and key from the environment: \(fromEnvironment.output)")
        #expect((fromEnvironment.documents.first ?? nil)?["status"] as? String == "succeeded")
        runs.append(fromEnvironment)

        let noKey = try await ClientRun.run(["list"], environment: ["JOBPOOL_URL": url])
        #expect(noKey.status == 6, "a 401 is a refusal: \(noKey.output)")
        #expect(noKey.stderr.contains("(401)"), "\(noKey.stderr)")
        runs.append(noKey)

        let argument = try await ClientRun.run(["list", "--api-key", key], environment: ["JOBPOOL_URL": url])
        #expect(argument.status == 0, "\(argument.output)")
        #expect(((argument.documents.first ?? nil)?["jobs"] as? [Any])?.count == 1, "\(argument.stdout)")
        runs.append(argument)

        let environmentWins = try await ClientRun.run(["list", "--api-key", key], environment: ["JOBPOOL_URL": url, "JOBPOOL_API_KEY": wrong])
        #expect(environmentWins.status == 6, "JOBPOOL_API_KEY wins over --api-key: \(environmentWins.output)")
        runs.append(environmentWins)

        let fileWins = try await ClientRun.run(["list", "--api-key-file", keyFile.path, "--api-key", wrong],
                                               environment: ["JOBPOOL_URL": url, "JOBPOOL_API_KEY": wrong])
        #expect(fileWins.status == 0, "--api-key-file wins over both: \(fileWins.output)")
        runs.append(fileWins)

        let flagWins = try await ClientRun.run(["list", "--url", url, "--api-key", key], environment: ["JOBPOOL_URL": "http://127.0.0.1:9"])
        #expect(flagWins.status == 0, "--url wins over JOBPOOL_URL: \(flagWins.output)")
        runs.append(flagWins)

        let terminal = try await ClientRun.runInTerminal(["list", "--api-key", key, "--url", url])
        #expect(terminal.status == 0, "\(terminal.output)")
        #expect(terminal.lines.count == 2, "a header and the one job: \(terminal.stdout)")
        runs.append(terminal)

        let refused = try await ClientRun.runInTerminal(["get", "x", "--api-key", wrong, "--url", url])
        #expect(refused.status == 6, "\(refused.output)")
        runs.append(refused)

        server.stop()
        let unreachable = try await ClientRun.run(["list", "--api-key", key, "--url", url])
        #expect(unreachable.status == 7, "\(unreachable.output)")
        runs.append(unreachable)

        for run in runs {
            #expect(!run.output.contains(key) && !run.output.contains(wrong), "an API key was printed: \(run.output)")
        }
    }

    @Test("--help says that an --api-key argument shows in ps, and lists the exit codes")
    func help() async throws {
        for command in ["submit", "get", "wait", "list", "cancel", "watch"] {
            let run = try await ClientRun.run([command, "--help"])
            #expect(run.status == 0, "\(run.output)")
            let text = run.stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
            #expect(text.contains("An argument shows in `ps`"), "\(command): \(text)")
            #expect(text.contains("7 cannot connect, or a 5xx"), "\(command): \(text)")
        }
    }
}
