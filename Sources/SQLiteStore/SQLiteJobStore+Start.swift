extension SQLiteJobStore {
    /// Does nothing yet: the writer thread still starts in `init`. It moves here, so that no
    /// thread starts from an `init`, with the store's rework (issue 15).
    public func start() {}
}
