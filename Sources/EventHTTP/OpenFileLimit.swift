import Glibc

/// Raises the soft open-file limit so that `connections` sockets fit beside the process's own
/// files. Returns the soft limit in force afterwards (it never exceeds the hard limit).
@discardableResult
public func raiseOpenFileLimit(toFit connections: Int) -> Int {
    var limit = rlimit()
    guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 0 }
    let wanted = rlim_t(connections + 256)
    if limit.rlim_cur < wanted {
        limit.rlim_cur = min(wanted, limit.rlim_max)
        _ = setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
        _ = getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
    }
    return Int(limit.rlim_cur)
}
