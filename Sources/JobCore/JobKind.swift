/// A kind of job clients can submit, such as `write_code`.
///
/// A kind checks its input when the job is submitted, so that bad input is refused with a
/// precise error before anything is queued, and returns the work to run later.
public protocol JobKind: Sendable {
    /// The name clients put in `kind`.
    var name: String { get }

    /// Checks `input` and captures it, typed, in the work to run. Throws an ``InputError``
    /// whose pointer is relative to the request body (for example `/input/name`).
    func makeWork(input: JSONValue) throws(InputError) -> JobWork
}
