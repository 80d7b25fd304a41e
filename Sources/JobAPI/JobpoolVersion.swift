/// The release, shown by `jobpool --version` and in the outbound `User-Agent`.
public enum JobpoolVersion {
    public static let current = "0.1.0"
}
