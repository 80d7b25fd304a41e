import Foundation
import Glibc
import JobCore

/// The one-process-per-store rule: a sidecar file `PATH.lock`, held with
/// `flock(LOCK_EX | LOCK_NB)` for the life of the store and holding the owner's PID.
///
/// Two processes on one SQLite file would each take the other's running jobs for crashed ones
/// and run them again, overwriting results that were already returned. SQLite's own exclusive
/// locking mode would prevent that too, but it also shuts out read-only connections and a live
/// `sqlite3 .backup`, so the lock lives beside the database instead. `flock` locks belong to
/// the open file description, so the kernel drops the lock when the process dies (even by
/// `kill -9`), and a second open in the same process is refused as well.
///
/// ```swift
/// let lock = try StoreOwnerLock.acquire(storePath: "data/jobpool.sqlite")
/// defer { lock.release() }
/// ```
struct StoreOwnerLock: Sendable {
    let path: String
    private let descriptor: Int32

    private init(path: String, descriptor: Int32) {
        self.path = path
        self.descriptor = descriptor
    }

    /// Takes the lock for the store at `storePath`, or throws naming the process that holds it.
    static func acquire(storePath: String) throws(StoreError) -> StoreOwnerLock {
        let path = storePath + ".lock"
        let descriptor = Glibc.open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            // A lock file left by another user (root ran jobpool once, say) is a permission
            // problem like the store's own, and is reported the same way.
            throw StoreFileAccess.refusal(errno, path: path, what: "the lock file of the job store \(storePath)")
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let code = errno
            let holder = Self.recordedPID(descriptor)
            Glibc.close(descriptor)
            guard code == EWOULDBLOCK else {
                throw StoreError("cannot lock \(path) for the job store \(storePath): \(String(cString: strerror(code)))")
            }
            let who = holder.map { "jobpool process \($0)" } ?? "another jobpool process"
            throw StoreError("the job store \(storePath) is in use by \(who), which holds \(path). One process owns a store: stop that process first, or start this one with another --store path.")
        }
        // Write our PID for the next process's message; the lock, not the file's text, is the truth.
        let text = Array("\(getpid())\n".utf8)
        _ = ftruncate(descriptor, 0)
        _ = text.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, 0) }
        return StoreOwnerLock(path: path, descriptor: descriptor)
    }

    /// Lets go of the lock. The file stays: removing it would let a third process lock a new
    /// file while a second still waits on the old one.
    func release() {
        _ = ftruncate(descriptor, 0)
        Glibc.close(descriptor)
    }

    private static func recordedPID(_ descriptor: Int32) -> Int? {
        var buffer = [UInt8](repeating: 0, count: 32)
        let count = buffer.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { return nil }
        return Int(String(decoding: buffer[0..<count], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }
}
