import Foundation
import Glibc
import JobCore

/// Checks, before anything is opened, that this process may write the store file and its
/// folder, and says who owns them when it may not.
///
/// SQLite quietly opens a write-protected file read-only, and its errors name no owner, so a
/// `0444` file used to start, say `listening`, and then refuse every submission. The folder
/// must be writable too: SQLite creates the `-wal` and `-shm` files beside the database.
enum StoreFileAccess {
    static func checkWritable(path: String) throws(StoreError) {
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        if access(folder, W_OK | X_OK) != 0 {
            throw refusal(errno, path: folder, what: "the folder of the job store \(path)")
        }
        if FileManager.default.fileExists(atPath: path), access(path, R_OK | W_OK) != 0 {
            throw refusal(errno, path: path, what: "the job store \(path)")
        }
    }

    /// Why `path` (described as `what`) cannot be used, from the `errno` of the attempt.
    static func refusal(_ code: Int32, path: String, what: String) -> StoreError {
        switch code {
        case EROFS:
            return StoreError("\(what) is on a read-only file system, and jobpool must write it. Remount it read-write, or start with another --store path.")
        case EACCES, EPERM:
            let attributes = try? FileManager.default.attributesOfItem(atPath: path)
            let ownerID = (attributes?[.ownerAccountID] as? NSNumber)?.uint32Value
            let owner = (attributes?[.ownerAccountName] as? String) ?? ownerID.map { "uid \($0)" }
            let mode = (attributes?[.posixPermissions] as? NSNumber).map { String($0.intValue & 0o777, radix: 8) }
            let facts = [owner.map { "owned by \($0)" }, mode.map { "mode 0\($0)" }].compactMap { $0 }.joined(separator: ", ")
            let remedy = ownerID == getuid()
                ? "Give the owner read and write access (chmod u+rw)."
                : "Run jobpool as the owner, or give this user read and write access (chown, chmod)."
            return StoreError("permission denied: \(what)\(facts.isEmpty ? "" : " (\(facts))") cannot be written by \(NSUserName()) (uid \(getuid())), the user jobpool runs as. \(remedy)")
        default:
            return StoreError("cannot use \(what): \(String(cString: strerror(code)))")
        }
    }
}
