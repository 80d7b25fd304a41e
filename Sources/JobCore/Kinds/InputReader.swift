/// Reads typed fields out of a job's JSON input, producing ``InputError``s that name each field
/// by its JSON pointer in the request body.
public struct InputReader {
    private let members: [String: JSONValue]
    private let pointerPrefix: String

    /// Fails unless `input` is an object.
    public init(_ input: JSONValue, pointer: String = "/input") throws(InputError) {
        guard let members = input.objectValue else {
            throw InputError(pointer: pointer, message: "'input' must be a JSON object, not \(input.typeName).")
        }
        self.members = members
        self.pointerPrefix = pointer
    }

    /// Refuses members other than `known`, so that a misspelt option is not silently ignored.
    public func rejectUnknown(_ known: Set<String>) throws(InputError) {
        if let unknown = members.firstUnknownMember(known.contains) {
            throw InputError(
                pointer: pointer(unknown),
                message: "Unknown field '\(unknown)'. Known fields: \(known.sorted().joined(separator: ", ")).")
        }
    }

    /// A required string of 1 to `maxLength` characters.
    public func requiredString(_ key: String, maxLength: Int = 1024) throws(InputError) -> String {
        guard let value = members[key] else {
            throw InputError(pointer: pointer(key), message: "'\(key)' is required: a string.")
        }
        guard let string = value.stringValue else {
            throw InputError(pointer: pointer(key), message: "'\(key)' must be a string, not \(value.typeName).")
        }
        guard !string.isEmpty, string.count <= maxLength else {
            throw InputError(pointer: pointer(key),
                             message: "'\(key)' must be 1 to \(maxLength) characters long.")
        }
        return string
    }

    /// An optional number within `range`, or `nil` when absent.
    public func number(_ key: String, in range: ClosedRange<Double>) throws(InputError) -> Double? {
        guard let value = members[key], value != .null else { return nil }
        guard let number = value.doubleValue else {
            throw InputError(pointer: pointer(key), message: "'\(key)' must be a number, not \(value.typeName).")
        }
        guard range.contains(number) else {
            throw InputError(pointer: pointer(key),
                             message: "'\(key)' must be between \(range.lowerBound.plainText) and \(range.upperBound.plainText); got \(number.plainText).")
        }
        return number
    }

    /// An optional whole number within `range`, or `nil` when absent.
    public func integer(_ key: String, in range: ClosedRange<Int>) throws(InputError) -> Int? {
        guard let value = members[key], value != .null else { return nil }
        guard let number = value.doubleValue, number == number.rounded(), abs(number) < 1e18 else {
            throw InputError(pointer: pointer(key), message: "'\(key)' must be a whole number, not \(value.typeName == "number" ? "a fraction" : value.typeName).")
        }
        guard range.contains(Int(number)) else {
            throw InputError(pointer: pointer(key),
                             message: "'\(key)' must be between \(range.lowerBound) and \(range.upperBound); got \(Int(number)).")
        }
        return Int(number)
    }

    /// An optional array of up to `maxCount` whole numbers, each within `range`, or `nil` when absent.
    public func integers(_ key: String, in range: ClosedRange<Int>, maxCount: Int) throws(InputError) -> [Int]? {
        guard let value = members[key], value != .null else { return nil }
        guard case .array(let items) = value, items.count <= maxCount else {
            throw InputError(pointer: pointer(key), message: "'\(key)' must be an array of at most \(maxCount) whole numbers from \(range.lowerBound) to \(range.upperBound), such as [502, 503].")
        }
        var numbers: [Int] = []
        for (index, item) in items.enumerated() {
            guard case .integer(let number) = item, range.contains(number) else {
                throw InputError(pointer: pointer(key) + "/\(index)",
                                 message: "Each of '\(key)' must be a whole number from \(range.lowerBound) to \(range.upperBound).")
            }
            numbers.append(number)
        }
        return numbers
    }

    /// An optional boolean, or `nil` when absent.
    public func bool(_ key: String) throws(InputError) -> Bool? {
        guard let value = members[key], value != .null else { return nil }
        guard case .bool(let flag) = value else {
            throw InputError(pointer: pointer(key), message: "'\(key)' must be true or false, not \(value.typeName).")
        }
        return flag
    }

    /// The JSON pointer of a member, escaped as RFC 6901 requires.
    public func pointer(_ key: String) -> String {
        pointerPrefix + "/" + key.replacingOccurrences(of: "~", with: "~0").replacingOccurrences(of: "/", with: "~1")
    }
}
