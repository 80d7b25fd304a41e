import Foundation
import Testing
@testable import JobCore

@Suite("JSON parser and writer")
struct JSONTests {
    @Test("parses valid documents", arguments: [
        (#"{"a": [1, -2.5, true, false, null, "x"]}"#,
         JSONValue.object(["a": .array([.integer(1), .number(-2.5), .bool(true), .bool(false), .null, .string("x")])])),
        (#"  "\u00e9\n\ud83d\ude00\/"  "#, .string("é\n😀/")),
        ("0", .integer(0)),
        ("1e3", .number(1000)),
        (#"{"k":{}}"#, .object(["k": .object([:])])),
        ("[]", .array([])),
    ])
    func valid(text: String, expected: JSONValue) throws {
        #expect(try JSONParser.parse(Array(text.utf8)) == expected)
    }

    @Test("rejects invalid documents", arguments: [
        "", "{", "[1,]", "{\"a\":1,}", "01", "1.", "-", "+1", "tru", "\"abc", "\"\\x\"", "\"\\ud800\"",
        "{\"a\" 1}", "[1 2]", "1 2", "\"a\u{01}b\"", "1e999", "{'a':1}", "NaN",
    ])
    func invalid(text: String) {
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse(Array(text.utf8)) }
    }

    @Test("rejects invalid UTF-8 and over-deep nesting")
    func hostileInput() {
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse([0x22, 0xFF, 0x22]) }
        let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse(Array(deep.utf8)) }
        let allowed = String(repeating: "[", count: JSONParser.maxDepth) + String(repeating: "]", count: JSONParser.maxDepth)
        #expect(throws: Never.self) { try JSONParser.parse(Array(allowed.utf8)) }
    }

    @Test("the writer's output reads back the same, and Foundation agrees")
    func roundTrip() throws {
        let value = JSONValue.object([
            "text": .string("quote \" backslash \\ newline \n tab \t bell \u{07} é 😀"),
            "numbers": .array([.integer(-12), .number(0.25), .number(1e-7), .integer(Int.max)]),
            "nested": .object(["flag": .bool(true), "nothing": .null]),
        ])
        var writer = JSONWriter()
        writer.value(value)
        #expect(try JSONParser.parse(writer.bytes) == value)
        let foundation = try JSONSerialization.jsonObject(with: Data(writer.bytes)) as? [String: Any]
        #expect(foundation?["text"] as? String == "quote \" backslash \\ newline \n tab \t bell \u{07} é 😀")
    }
}
