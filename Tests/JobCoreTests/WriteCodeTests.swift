import Testing
@testable import JobCore

@Suite("write_code")
struct WriteCodeTests {
    private func context() -> JobContext { JobContext(signal: CancellationSignal(), jobID: JobID()) }

    @Test("returns the name and 5 to 10 lines")
    func result() throws {
        let work = try WriteCode().makeWork(input: .object(["name": .string("alex"), "max_seconds": .integer(0)]))
        for _ in 0..<50 {
            let result = try work(context()).objectValue
            #expect(result?["name"] == .string("alex"))
            guard case .integer(let lines)? = result?["lines"] else { Issue.record("lines missing"); return }
            #expect((5...10).contains(lines))
        }
    }

    @Test("bad input names the field", arguments: [
        (JSONValue.object([:]), "/input/name"),
        (.object(["name": .integer(3)]), "/input/name"),
        (.object(["name": .string("")]), "/input/name"),
        (.object(["name": .string("a"), "max_seconds": .string("1")]), "/input/max_seconds"),
        (.object(["name": .string("a"), "max_seconds": .integer(3601)]), "/input/max_seconds"),
        (.object(["name": .string("a"), "min_seconds": .integer(-1)]), "/input/min_seconds"),
        (.object(["name": .string("a"), "min_seconds": .integer(4), "max_seconds": .integer(2)]), "/input/max_seconds"),
        (.object(["name": .string("a"), "colour": .string("red")]), "/input/colour"),
        (.array([]), "/input"),
    ])
    func invalidInput(input: JSONValue, pointer: String) {
        #expect {
            _ = try WriteCode().makeWork(input: input)
        } throws: { error in
            (error as? InputError)?.pointer == pointer
        }
    }

    @Test("max_seconds alone below the default minimum means no sleep, not an error")
    func maxSecondsAlone() throws {
        let work = try WriteCode().makeWork(input: .object(["name": .string("a"), "max_seconds": .number(0.5)]))
        let started = ContinuousClock.now
        _ = try work(context())
        #expect(ContinuousClock.now - started < .seconds(1))
    }
}
