/// Any JSON value. Job inputs and results are stored as these, apart from each kind's typed
/// input, so that the core can keep and return them without knowing every kind.
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case integer(Int)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// The members of an object, or `nil` for any other value.
    public var objectValue: [String: JSONValue]? {
        if case .object(let members) = self { return members }
        return nil
    }

    /// The string, or `nil` for any other value.
    public var stringValue: String? {
        if case .string(let string) = self { return string }
        return nil
    }

    /// The value as a number, for integers and floating-point numbers alike.
    public var doubleValue: Double? {
        switch self {
        case .integer(let value): return Double(value)
        case .number(let value): return value
        default: return nil
        }
    }

    /// A short name of the value's JSON type, for error messages.
    public var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "boolean"
        case .integer, .number: return "number"
        case .string: return "string"
        case .array: return "array"
        case .object: return "object"
        }
    }
}

extension [String: JSONValue] {
    /// The alphabetically first member name that `isKnown` refuses, for a stable error message;
    /// nil, without sorting or allocating, when every member is known (the usual case).
    public func firstUnknownMember(_ isKnown: (String) -> Bool) -> String? {
        keys.filter { !isKnown($0) }.min()
    }
}
