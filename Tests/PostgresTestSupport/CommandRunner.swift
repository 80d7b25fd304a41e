import Foundation
import Glibc

/// Runs a program to its end with `posix_spawn`, its output going to a file. Foundation's
/// `Process` is not used: the cluster is also stopped from an `atexit` handler, when the
/// process is already on its way out.
enum CommandRunner {
    /// Runs `arguments` (the first is the program's path) and waits. Returns its exit status.
    @discardableResult
    static func run(_ arguments: [String], output: String = "/dev/null") -> Int32 {
        guard let pid = spawn(arguments, output: output) else { return -1 }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1, errno == EINTR {}
        return (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
    }

    /// Starts `arguments` without waiting; returns its PID.
    static func spawn(_ arguments: [String], output: String = "/dev/null") -> pid_t? {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let copies = arguments.map { strdup($0) } + [nil]
        defer { for copy in copies { free(copy) } }
        var pid: pid_t = 0
        let started = copies.withUnsafeBufferPointer { argv in
            posix_spawn(&pid, arguments[0], &actions, nil, argv.baseAddress!, environ)
        }
        return started == 0 ? pid : nil
    }
}
