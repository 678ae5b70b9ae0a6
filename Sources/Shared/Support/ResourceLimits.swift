#if canImport(Glibc)
import Glibc
#endif

public enum ResourceLimits {
    /// Raises the soft open-file limit to the hard one: every circuit holds sockets, and the
    /// usual soft default (1024) would cap a router or tunneler at a few hundred circuits.
    public static func raiseOpenFileLimit() {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
        limit.rlim_cur = limit.rlim_max
        _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }
}
