import Foundation

/// A Standard Webhooks secret: `whsec_` followed by base64 of 24 to 64 random bytes.
public enum WebhookSecret {
    public static let prefix = "whsec_"

    /// Why a secret was refused, in words a client can act on.
    public struct Invalid: Error, Sendable, Equatable {
        public var message: String
    }

    /// The HMAC key bytes of `text`.
    public static func key(from text: String) throws(Invalid) -> [UInt8] {
        guard text.hasPrefix(prefix) else {
            throw Invalid(message: "A webhook secret starts with '\(prefix)', followed by base64 of 24 to 64 random bytes.")
        }
        guard let data = Data(base64Encoded: String(text.dropFirst(prefix.count))) else {
            throw Invalid(message: "The part after '\(prefix)' must be standard base64.")
        }
        guard (24...64).contains(data.count) else {
            throw Invalid(message: "The secret must decode to 24 to 64 bytes; it decodes to \(data.count).")
        }
        return Array(data)
    }

    /// The secret text for key bytes (to show a generated secret again).
    public static func text(forKey key: [UInt8]) -> String {
        prefix + Data(key).base64EncodedString()
    }

    /// A new random secret (32 bytes) and its key bytes.
    public static func generate() -> (text: String, key: [UInt8]) {
        var generator = SystemRandomNumberGenerator()
        let key = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        return (text(forKey: key), key)
    }
}
