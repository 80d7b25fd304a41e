import Foundation
import Glibc
import Synchronization

/// A tiny HTTP/1.1 server on a loopback address and port 0, for fetch tests: the pages, slow
/// and endless responses and redirects that fetch_url must handle. One thread per connection,
/// `Connection: close`. It counts requests, so tests can prove a blocked fetch never reached it.
final class FetchTargetServer: Sendable {
    enum Reply: Sendable {
        case page(status: Int, headers: [String: String] = [:], body: [UInt8])
        /// Headers, then body bytes forever until the client goes away.
        case endless
        /// Never answers.
        case hang
    }

    /// One request as received, for assertions (webhook sinks check headers and bodies).
    struct Request: Sendable {
        var method: String
        var path: String
        /// Header names lower-cased.
        var headers: [String: String]
        var body: [UInt8]
        var receivedAt: ContinuousClock.Instant
    }

    typealias Handler = @Sendable (_ request: Request) -> (delay: Duration, reply: Reply)

    let host: String
    let port: Int
    private let listener: Int32
    private let handler: Handler
    private let state = Mutex((requests: 0, inFlight: 0, peak: 0, stopped: false, received: [Request]()))

    /// Every request received so far, in order.
    var received: [Request] { state.withLock { $0.received } }

    /// Requests received (complete request heads).
    var requestCount: Int { state.withLock { $0.requests } }
    /// The most requests being answered at the same moment.
    var peakConcurrency: Int { state.withLock { $0.peak } }
    private var isStopped: Bool { state.withLock { $0.stopped } }

    /// The base URL, e.g. `http://127.0.0.2:41234`.
    var url: String { host.contains(":") ? "http://[\(host)]:\(port)" : "http://\(host):\(port)" }

    init(host: String = "127.0.0.2", handler: @escaping Handler = { FetchTargetServer.standardRoutes($0.path) }) throws {
        self.host = host
        self.handler = handler
        let isIPv6 = host.contains(":")
        let listener = socket(isIPv6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var yes: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var storage = sockaddr_storage()
        var length: socklen_t
        if isIPv6 {
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            inet_pton(AF_INET6, host, &address.sin6_addr)
            withUnsafeMutableBytes(of: &storage) { $0.storeBytes(of: address, as: sockaddr_in6.self) }
            length = socklen_t(MemoryLayout<sockaddr_in6>.size)
        } else {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            inet_pton(AF_INET, host, &address.sin_addr)
            withUnsafeMutableBytes(of: &storage) { $0.storeBytes(of: address, as: sockaddr_in.self) }
            length = socklen_t(MemoryLayout<sockaddr_in>.size)
        }
        let bound = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) }
        }
        guard bound == 0, listen(listener, 64) == 0 else {
            close(listener)
            throw POSIXError(.EADDRNOTAVAIL)
        }
        var actual = sockaddr_in6()
        var actualLength = socklen_t(MemoryLayout<sockaddr_in6>.size)
        _ = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &actualLength) }
        }
        port = Int(UInt16(bigEndian: actual.sin6_port)) // same offset as sin_port
        self.listener = listener
        Thread { [self] in acceptLoop() }.start()
    }

    /// Stops accepting. The accept thread closes the listener itself once it has left `poll`
    /// and `accept`: closing it here could let those calls reach whatever socket (another
    /// test's, or a server's) reuses the descriptor number in this process.
    func stop() {
        state.withLock { $0.stopped = true }
        shutdown(listener, Int32(SHUT_RDWR)) // wakes the accept thread
    }

    private func acceptLoop() {
        defer { close(listener) }
        while !isStopped {
            var descriptor = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            guard poll(&descriptor, 1, 100) == 1 else { continue }
            let connection = accept(listener, nil, nil)
            guard connection >= 0 else { continue }
            Thread { [self] in serve(connection) }.start()
        }
    }

    private func serve(_ connection: Int32) {
        defer { close(connection) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var head: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !String(decoding: head, as: UTF8.self).contains("\r\n\r\n") {
            let count = recv(connection, &buffer, buffer.count, 0)
            guard count > 0, head.count < 65536 else { return }
            head += buffer[0..<count]
        }
        let text = String(decoding: head, as: UTF8.self)
        let headEnd = text.range(of: "\r\n\r\n")!
        let lines = text[..<headEnd.lowerBound].components(separatedBy: "\r\n")
        let requestLine = lines.first?.split(separator: " ") ?? []
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        var body = Array(head[(text.utf8.distance(from: text.startIndex, to: headEnd.upperBound))...])
        let wanted = Int(headers["content-length"] ?? "0") ?? 0
        while body.count < wanted {
            let count = recv(connection, &buffer, buffer.count, 0)
            guard count > 0 else { break }
            body += buffer[0..<count]
        }
        let request = Request(method: requestLine.first.map(String.init) ?? "", path: requestLine.dropFirst().first.map(String.init) ?? "/",
                              headers: headers, body: body, receivedAt: .now)
        state.withLock {
            $0.requests += 1; $0.inFlight += 1; $0.peak = max($0.peak, $0.inFlight); $0.received.append(request)
        }
        var isInFlight = true
        func leave() {
            if isInFlight { state.withLock { $0.inFlight -= 1 } }
            isInFlight = false
        }
        defer { leave() }
        let (delay, reply) = handler(request)
        sleepUnlessStopped(delay)
        switch reply {
        case .page(let status, let headers, let body):
            // Counted out before the reply leaves: once the client has it, the client may send
            // its next request, which must not meet this one still counted (peakConcurrency).
            leave()
            var text = "HTTP/1.1 \(status) Test\r\nContent-Length: \(body.count)\r\nConnection: close\r\n"
            for (name, value) in headers { text += "\(name): \(value)\r\n" }
            send(connection, Array((text + "\r\n").utf8) + body)
        case .endless:
            send(connection, Array("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n".utf8))
            let chunk = [UInt8](repeating: UInt8(ascii: "x"), count: 65536)
            let deadline = ContinuousClock.now + .seconds(30)
            while !isStopped, ContinuousClock.now < deadline, send(connection, chunk) { }
        case .hang:
            sleepUnlessStopped(.seconds(30))
        }
    }

    @discardableResult
    private func send(_ connection: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { Glibc.send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent <= 0 { return false }
            offset += sent
        }
        return true
    }

    private func sleepUnlessStopped(_ duration: Duration) {
        let deadline = ContinuousClock.now + duration
        while !isStopped, ContinuousClock.now < deadline { Thread.sleep(forTimeInterval: 0.02) }
    }

    /// `/page/N` (N bytes), `/slow/MS/N`, `/status/CODE`, `/redirect/N` (N hops, then a page),
    /// `/redirect-to?URL`, `/endless`, `/hang`, `/gzip-bomb`.
    static let standardRoutes: @Sendable (String) -> (delay: Duration, reply: Reply) = { path in
        let parts = path.split(separator: "/").map(String.init)
        let page = { (count: Int) in Reply.page(status: 200, headers: ["Content-Type": "text/html"],
                                                 body: [UInt8](repeating: UInt8(ascii: "a"), count: count)) }
        switch parts.first {
        case "page": return (.zero, page(Int(parts[1]) ?? 0))
        case "slow": return (.milliseconds(Int(parts[1]) ?? 0), page(Int(parts[2]) ?? 0))
        case "status": return (.zero, .page(status: Int(parts[1]) ?? 500, body: Array("status".utf8)))
        case "redirect":
            let remaining = Int(parts[1]) ?? 0
            let next = remaining <= 1 ? "/page/10" : "/redirect/\(remaining - 1)"
            return (.zero, .page(status: 302, headers: ["Location": next], body: []))
        case let first? where first.hasPrefix("redirect-to"):
            let target = path.split(separator: "?", maxSplits: 1).dropFirst().first.map(String.init) ?? "/"
            return (.zero, .page(status: 302, headers: ["Location": target], body: []))
        case "endless": return (.zero, .endless)
        case "hang": return (.zero, .hang)
        case "gzip-bomb": return (.zero, .page(status: 200, headers: ["Content-Encoding": "gzip"], body: gzipBomb))
        default: return (.zero, .page(status: 404, body: Array("not found".utf8)))
        }
    }

    /// 8 MiB of zeros, gzip-compressed to a few KiB, made once with the system's gzip.
    static let gzipBomb: [UInt8] = {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "head -c 8388608 /dev/zero | gzip -9 -c"]
        let pipe = Pipe()
        process.standardOutput = pipe
        try? process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Array(data)
    }()
}
