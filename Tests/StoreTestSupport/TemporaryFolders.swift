import Foundation
import Synchronization

/// Temporary folders the tests make, removed when the test process exits.
///
/// A store's folder cannot go when its server stops: a restart test opens the same store with
/// a second server. So each folder is noted here and removed at exit, whatever the test did.
public enum TemporaryFolders {
    private static let made = Mutex<[URL]>([])
    /// Registers the removal once, on first use.
    private static let removalAtExit: Void = { atexit { TemporaryFolders.removeAll() } }()

    /// A new folder's location under the system's temporary folder, `prefix-UUID`, not made yet.
    public static func make(prefix: String) -> URL {
        _ = removalAtExit
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
        made.withLock { $0.append(folder) }
        return folder
    }

    /// The path of `jobs.sqlite` in a new temporary folder.
    public static func sqlitePath(prefix: String = "jobpool") -> String {
        make(prefix: prefix).appendingPathComponent("jobs.sqlite").path
    }

    private static func removeAll() {
        for folder in made.withLock({ $0 }) { try? FileManager.default.removeItem(at: folder) }
    }
}
