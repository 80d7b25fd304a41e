import ArgumentParser
import Foundation

/// Reads a setting that was not given as a flag from its `JOBPOOL_*` environment variable, so
/// that containers can be configured without a command line. A flag always wins.
struct Environment {
    var variables = ProcessInfo.processInfo.environment

    func value<T: ExpressibleByArgument>(_ flag: T?, _ name: String, default defaultValue: T) throws -> T {
        if let flag { return flag }
        guard let text = variables[name], !text.isEmpty else { return defaultValue }
        guard let value = T(argument: text) else {
            throw ValidationError("Environment variable \(name)='\(text)' is not a valid value.")
        }
        return value
    }

    func optional<T: ExpressibleByArgument>(_ flag: T?, _ name: String) throws -> T? {
        if let flag { return flag }
        guard let text = variables[name], !text.isEmpty else { return nil }
        guard let value = T(argument: text) else {
            throw ValidationError("Environment variable \(name)='\(text)' is not a valid value.")
        }
        return value
    }

    /// A comma-separated list, trimmed, empty items dropped; empty when the variable is unset.
    func list(_ name: String) -> [String] {
        (variables[name] ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }
}
