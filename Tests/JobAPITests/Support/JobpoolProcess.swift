import Foundation
import Synchronization
import Testing

/// A real `jobpool serve` process, for tests that need more than one process or a clean exit
/// code. Its standard error is collected; ``stop()`` ends it by PID on every path (use `defer`).
final class JobpoolProcess: Sendable {
    /// The `jobpool` executable that `swift build` and `swift test` build beside the tests.
    static let binary = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent(".build/debug/jobpool").path

    private let process: Process
    private let output = OutputBuffer()
    private let exited = DispatchSemaphore(value: 0)
    /// Signalled once standard error reaches its end (the process and its children closed it).
    private let outputEnded = DispatchSemaphore(value: 0)

    /// Starts `jobpool` with `arguments`, in `directory` if given; `launcher` (such as
    /// `setpriv ...`) goes in front.
    init(_ arguments: [String], launcher: [String] = [], directory: String? = nil) throws {
        guard FileManager.default.isExecutableFile(atPath: Self.binary) else {
            throw TestFailure("\(Self.binary) is missing: build it first (swift build, or Tests/run.sh)")
        }
        process = Process()
        let command = launcher + [Self.binary] + arguments
        process.executableURL = URL(fileURLWithPath: launcher.isEmpty ? Self.binary : "/usr/bin/env")
        process.arguments = launcher.isEmpty ? arguments : command
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        let pipe = Pipe()
        process.standardError = pipe
        process.standardOutput = FileHandle.nullDevice
        pipe.fileHandleForReading.readabilityHandler = { [output, outputEnded] handle in
            let chunk = handle.availableData
            guard chunk.isEmpty else { return output.append(chunk) }
            // End of file: stop watching, or the handler fires on the closed pipe for ever.
            handle.readabilityHandler = nil
            outputEnded.signal()
        }
        process.terminationHandler = { [exited] _ in exited.signal() }
        try process.run()
    }

    var pid: Int32 { process.processIdentifier }

    /// What the process wrote to standard error so far.
    var log: String { output.text }

    /// Waits for the `listening on` line and returns the HTTP port.
    func waitUntilListening(timeout: Duration = .seconds(20)) throws -> Int {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let match = log.firstMatch(of: /listening on http:\/\/127\.0\.0\.1:(\d+)/), let port = Int(match.1) { return port }
            if !process.isRunning { throw TestFailure("jobpool exited (\(process.terminationStatus)) before listening: \(log)") }
            Thread.sleep(forTimeInterval: 0.02)
        }
        throw TestFailure("jobpool did not start listening within \(timeout): \(log)")
    }

    /// Waits for the process to exit by itself; returns its status, or nil if it is still running.
    func waitForExit(timeout: Duration) -> Int32? {
        let deadline = DispatchTime.now() + .milliseconds(Int(timeout.components.seconds * 1000))
        guard exited.wait(timeout: deadline) == .success else { return nil }
        exited.signal()
        // Everything it wrote has been read once its standard error reaches end of file.
        if outputEnded.wait(timeout: deadline) == .success { outputEnded.signal() }
        return process.terminationStatus
    }

    /// Sends `signal` to the process.
    func send(_ signal: Int32) { kill(process.processIdentifier, signal) }

    /// Ends the process: SIGTERM, then SIGKILL if it has not exited within 10 s.
    func stop() {
        guard process.isRunning else { return }
        send(SIGTERM)
        if waitForExit(timeout: .seconds(10)) == nil {
            send(SIGKILL)
            _ = waitForExit(timeout: .seconds(5))
        }
    }
}

/// Bytes a pipe delivered, on whichever thread it delivers them.
private final class OutputBuffer: Sendable {
    private let data = Mutex(Data())
    func append(_ chunk: Data) { data.withLock { $0.append(chunk) } }
    var text: String { data.withLock { String(decoding: $0, as: UTF8.self) } }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
