/// A job input that cannot run: names the offending field as a JSON pointer into the request
/// body (RFC 6901), with a message that says what to send instead.
public struct InputError: Error, Sendable, Hashable {
    /// For example `/input/name`.
    public var pointer: String
    public var message: String

    public init(pointer: String, message: String) {
        self.pointer = pointer
        self.message = message
    }
}
