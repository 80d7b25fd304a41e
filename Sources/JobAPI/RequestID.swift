import Synchronization

/// Request IDs for logs and the `X-Request-Id` header.
enum RequestID {
    private static let prefix: String = {
        var bytes = (UInt32(0), UInt32(0))
        withUnsafeMutableBytes(of: &bytes) { $0.withMemoryRebound(to: UInt8.self) { buffer in
            for index in buffer.indices { buffer[index] = UInt8.random(in: .min ... .max) }
        } }
        return String(bytes.0, radix: 36) + String(bytes.1, radix: 36)
    }()
    private static let counter = Atomic<UInt64>(0)

    /// The client's ID when it is safe to echo and log (1 to 128 printable ASCII characters, no
    /// spaces), otherwise a new one: a per-process random prefix and a counter, cheap and unique.
    static func accept(_ offered: String?) -> String {
        if let offered, (1...128).contains(offered.utf8.count), offered.utf8.allSatisfy({ (0x21...0x7E).contains($0) }) {
            return offered
        }
        let number = counter.wrappingAdd(1, ordering: .relaxed).newValue
        return "\(prefix)-\(String(number, radix: 36))"
    }
}
