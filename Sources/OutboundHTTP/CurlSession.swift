import CCurl
import Glibc

/// One reusable curl transfer context: a multi handle (which keeps the connection cache) and an
/// easy handle. Used by one thread at a time: the client hands it out for a single transfer.
final class CurlSession: @unchecked Sendable {
    private let multi: UnsafeMutableRawPointer
    private let easy: UnsafeMutableRawPointer
    private var errorBuffer = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE))

    init?() {
        guard let multi = curl_multi_init() else { return nil }
        guard let easy = curl_easy_init() else {
            curl_multi_cleanup(multi)
            return nil
        }
        self.multi = multi
        self.easy = easy
    }

    deinit {
        curl_easy_cleanup(easy)
        curl_multi_cleanup(multi)
    }

    /// Performs one transfer. `receive`, if given, gets a 2xx response's body as it arrives,
    /// on this thread, before `perform` returns.
    func perform(_ request: OutboundRequest, configuration: OutboundHTTPClient.Configuration,
                 abort: AbortHandle, receive: ((UnsafeRawBufferPointer) -> Void)? = nil) -> Result<OutboundResponse, OutboundFailure> {
        let transfer = TransferState(policy: configuration.policy, maxBytes: request.maxBytes,
                                     checksAddresses: configuration.egressProxy == nil)
        transfer.keepsBody = request.keepsBody
        transfer.receive = receive
        curl_easy_reset(easy)
        var headerList: UnsafeMutablePointer<curl_slist>?
        defer { curl_slist_free_all(headerList) }
        for (name, value) in request.headers { headerList = curl_slist_append(headerList, "\(name): \(value)") }
        configure(request, configuration: configuration, headers: headerList, transfer: transfer)

        guard abort.attach(multi) else { return .failure(.aborted) }
        defer { abort.detach() }
        let started = ContinuousClock.now
        curl_multi_add_handle(multi, easy)
        defer { curl_multi_remove_handle(multi, easy) }
        let code = withExtendedLifetime(transfer) { runUntilDone(abort: abort) }
        let elapsed = ContinuousClock.now - started
        guard let code else { return .failure(.aborted) }
        return outcome(code, request: request, transfer: transfer, elapsed: elapsed)
    }

    private func configure(_ request: OutboundRequest, configuration: OutboundHTTPClient.Configuration,
                           headers: UnsafeMutablePointer<curl_slist>?, transfer: TransferState) {
        let context = Unmanaged.passUnretained(transfer).toOpaque()
        errorBuffer[0] = 0
        errorBuffer.withUnsafeMutableBufferPointer { _ = ccurl_setopt_pointer(easy, CURLOPT_ERRORBUFFER, $0.baseAddress) }
        _ = ccurl_setopt_string(easy, CURLOPT_URL, request.url)
        // Only http and https, for the first request and for every redirect.
        _ = ccurl_setopt_string(easy, CURLOPT_PROTOCOLS_STR, "http,https")
        _ = ccurl_setopt_string(easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https")
        // Through a proxy, jobpool follows redirects itself and checks every hop's host
        // (OutboundHTTPClient+Proxy.swift): the socket-open check sees only the proxy there.
        let curlFollows = request.followRedirects && configuration.egressProxy == nil
        _ = ccurl_setopt_long(easy, CURLOPT_FOLLOWLOCATION, curlFollows ? 1 : 0)
        _ = ccurl_setopt_long(easy, CURLOPT_MAXREDIRS, request.maxRedirects)
        _ = ccurl_setopt_long(easy, CURLOPT_TIMEOUT_MS, Self.milliseconds(request.timeout))
        _ = ccurl_setopt_long(easy, CURLOPT_CONNECTTIMEOUT_MS, Self.milliseconds(min(request.connectTimeout, request.timeout)))
        _ = ccurl_setopt_long(easy, CURLOPT_NOSIGNAL, 1)
        // An empty proxy string makes curl ignore http_proxy, ALL_PROXY and the like; an empty
        // no-proxy list makes it ignore NO_PROXY/no_proxy, which would otherwise send a host
        // such as localhost around the egress proxy, where the socket-open check is off.
        _ = ccurl_setopt_string(easy, CURLOPT_PROXY, configuration.egressProxy ?? "")
        _ = ccurl_setopt_string(easy, CURLOPT_NOPROXY, "")
        // "" asks for every encoding curl can decode; the write callback counts decoded bytes,
        // so a compression bomb hits max_bytes like any other large body.
        _ = ccurl_setopt_string(easy, CURLOPT_ACCEPT_ENCODING, "")
        _ = ccurl_setopt_string(easy, CURLOPT_USERAGENT, configuration.userAgent)
        _ = ccurl_setopt_off_t(easy, CURLOPT_MAXFILESIZE_LARGE, curl_off_t(request.maxBytes))
        if let headers { _ = ccurl_setopt_pointer(easy, CURLOPT_HTTPHEADER, UnsafeMutableRawPointer(headers)) }
        if let body = request.body {
            _ = ccurl_setopt_long(easy, CURLOPT_POST, 1)
            _ = ccurl_setopt_off_t(easy, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.count))
            // COPYPOSTFIELDS: curl keeps its own copy, so the Swift buffer may go away. An empty
            // array has no base address, and a NULL here would make curl read the body from
            // standard input; "" is a real, empty buffer.
            if body.isEmpty {
                _ = ccurl_setopt_string(easy, CURLOPT_COPYPOSTFIELDS, "")
            } else {
                body.withUnsafeBytes { _ = ccurl_setopt_pointer(easy, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: $0.baseAddress)) }
            }
        }
        if let method = request.method { _ = ccurl_setopt_string(easy, CURLOPT_CUSTOMREQUEST, method) }
        if let idle = request.idleTimeout {
            // curl's low-speed limit: less than 1 byte a second for this many seconds.
            _ = ccurl_setopt_long(easy, CURLOPT_LOW_SPEED_LIMIT, 1)
            _ = ccurl_setopt_long(easy, CURLOPT_LOW_SPEED_TIME, max(1, Int(idle.components.seconds)))
        }
        _ = ccurl_setopt_data_callback(easy, CURLOPT_WRITEFUNCTION, curlSessionWrite)
        _ = ccurl_setopt_pointer(easy, CURLOPT_WRITEDATA, context)
        _ = ccurl_setopt_data_callback(easy, CURLOPT_HEADERFUNCTION, curlSessionHeader)
        _ = ccurl_setopt_pointer(easy, CURLOPT_HEADERDATA, context)
        _ = ccurl_setopt_opensocket_callback(easy, curlSessionOpenSocket)
        _ = ccurl_setopt_pointer(easy, CURLOPT_OPENSOCKETDATA, context)
    }

    /// Drives the transfer; `nil` if aborted, else curl's result code.
    private func runUntilDone(abort: AbortHandle) -> CURLcode? {
        var running: Int32 = 1
        while true {
            curl_multi_perform(multi, &running)
            if running == 0 { break }
            if abort.isAborted { return nil }
            // Wakes on socket activity, curl's own timers, or curl_multi_wakeup from abort().
            curl_multi_poll(multi, nil, 0, 1000, nil)
            if abort.isAborted { return nil }
        }
        var remaining: Int32 = 0
        var code = CURLE_OK
        while let message = curl_multi_info_read(multi, &remaining) {
            if message.pointee.msg == CURLMSG_DONE { code = message.pointee.data.result }
        }
        return code
    }

    private func outcome(_ code: CURLcode, request: OutboundRequest, transfer: TransferState,
                         elapsed: Duration) -> Result<OutboundResponse, OutboundFailure> {
        let detail = errorMessage(code)
        switch code {
        case CURLE_OK:
            var status = 0, redirects = 0
            var effectiveURL: UnsafeMutablePointer<CChar>?
            var contentType: UnsafeMutablePointer<CChar>?
            var redirectURL: UnsafeMutablePointer<CChar>?
            _ = ccurl_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &status)
            _ = ccurl_getinfo_string(easy, CURLINFO_REDIRECT_URL, &redirectURL)
            _ = ccurl_getinfo_long(easy, CURLINFO_REDIRECT_COUNT, &redirects)
            _ = ccurl_getinfo_string(easy, CURLINFO_EFFECTIVE_URL, &effectiveURL)
            _ = ccurl_getinfo_string(easy, CURLINFO_CONTENT_TYPE, &contentType)
            return .success(OutboundResponse(
                status: status, finalURL: effectiveURL.map { String(cString: $0) } ?? request.url,
                length: transfer.receivedBytes, contentType: contentType.map { String(cString: $0) },
                redirects: redirects, elapsed: elapsed, retryAfter: transfer.retryAfter,
                redirectLocation: redirectURL.map { String(cString: $0) }, body: transfer.body))
        case CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY:
            return .failure(.dns(detail))
        case CURLE_COULDNT_CONNECT:
            if let refusal = transfer.refusal { return .failure(.blockedAddress(refusal)) }
            return .failure(.connect(detail))
        case CURLE_OPERATION_TIMEDOUT:
            return .failure(.timeout(detail))
        case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CERTPROBLEM, CURLE_SSL_CIPHER,
             CURLE_SSL_CACERT_BADFILE, CURLE_SSL_ISSUER_ERROR, CURLE_SSL_PINNEDPUBKEYNOTMATCH,
             CURLE_SSL_INVALIDCERTSTATUS, CURLE_SSL_ENGINE_INITFAILED, CURLE_SSL_CRL_BADFILE:
            return .failure(.tls(detail))
        case CURLE_FILESIZE_EXCEEDED:
            return .failure(.tooLarge(limit: request.maxBytes))
        case CURLE_WRITE_ERROR where transfer.exceededLimit:
            return .failure(.tooLarge(limit: request.maxBytes))
        case CURLE_TOO_MANY_REDIRECTS:
            return .failure(.tooManyRedirects(limit: request.maxRedirects))
        case CURLE_UNSUPPORTED_PROTOCOL:
            return .failure(.protocolError("\(detail) (only http and https are fetched, also on redirects)"))
        default:
            if let refusal = transfer.refusal { return .failure(.blockedAddress(refusal)) }
            return .failure(.protocolError(detail))
        }
    }

    private func errorMessage(_ code: CURLcode) -> String {
        let buffered = errorBuffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        return buffered.isEmpty ? String(cString: curl_easy_strerror(code)) : buffered
    }

    private static func milliseconds(_ duration: Duration) -> Int {
        let (seconds, attoseconds) = duration.components
        return max(1, Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000))
    }
}

/// What the C callbacks of one transfer read and write. Lives for the transfer, on its thread.
final class TransferState {
    let policy: AddressPolicy
    let maxBytes: Int
    let checksAddresses: Bool
    var receivedBytes = 0
    var exceededLimit = false
    var refusal: AddressPolicy.Refusal?
    /// The last response's Retry-After header, for webhook retries.
    var retryAfter: String?
    /// The last response's status, from its status line: known before its body arrives.
    var status = 0
    var keepsBody = false
    var body: [UInt8] = []
    /// Gets a 2xx body as it arrives, instead of `body`.
    var receive: ((UnsafeRawBufferPointer) -> Void)?

    init(policy: AddressPolicy, maxBytes: Int, checksAddresses: Bool) {
        self.policy = policy
        self.maxBytes = maxBytes
        self.checksAddresses = checksAddresses
    }
}

/// Counts body bytes (decoded) and stops the transfer as soon as they pass the cap. The body is
/// kept only when asked for (the command-line client) or handed to a streaming receiver (its
/// `watch`): jobs report its length, and webhooks only need the status.
private func curlSessionWrite(_ data: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int,
                              _ context: UnsafeMutableRawPointer?) -> Int {
    guard let context else { return 0 }
    let transfer = Unmanaged<TransferState>.fromOpaque(context).takeUnretainedValue()
    let bytes = size * count
    transfer.receivedBytes += bytes
    if transfer.receivedBytes > transfer.maxBytes {
        transfer.exceededLimit = true
        return 0 // makes curl stop with CURLE_WRITE_ERROR
    }
    let chunk = UnsafeRawBufferPointer(start: data, count: bytes)
    if let receive = transfer.receive, (200..<300).contains(transfer.status) {
        receive(chunk)
    } else if transfer.keepsBody || transfer.receive != nil {
        transfer.body.append(contentsOf: chunk)
    }
    return bytes
}

/// Keeps what the client reports of the last response's head: its status and Retry-After.
private func curlSessionHeader(_ data: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int,
                               _ context: UnsafeMutableRawPointer?) -> Int {
    guard let context, let data else { return 0 }
    let bytes = size * count
    let transfer = Unmanaged<TransferState>.fromOpaque(context).takeUnretainedValue()
    let line = String(decoding: UnsafeRawBufferPointer(start: data, count: bytes), as: UTF8.self)
    if line.hasPrefix("HTTP/") {
        // A new response (after a redirect or a 100): start over.
        transfer.retryAfter = nil
        transfer.status = line.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
        transfer.body.removeAll()
    } else if line.count > 12, line.prefix(12).lowercased() == "retry-after:" {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" || $0 == "\n" || $0 == "\r\n" }
        transfer.retryAfter = String(line.dropFirst(12).drop(while: isSpace).reversed().drop(while: isSpace).reversed())
    }
    return bytes
}

/// The SSRF guard's hook: curl calls it with the resolved address of every connection it is
/// about to open, on every redirect hop. A refused address gets no socket, so no packet.
private func curlSessionOpenSocket(_ context: UnsafeMutableRawPointer?, _ purpose: curlsocktype,
                                   _ address: UnsafeMutablePointer<curl_sockaddr>?) -> curl_socket_t {
    guard let context, let address else { return -1 }
    let transfer = Unmanaged<TransferState>.fromOpaque(context).takeUnretainedValue()
    if transfer.checksAddresses {
        guard let ip = IPAddress(socketAddress: ccurl_sockaddr_address(address)) else { return -1 }
        if let refusal = transfer.policy.check(ip) {
            transfer.refusal = refusal
            return -1
        }
    }
    return socket(address.pointee.family, address.pointee.socktype, address.pointee.protocol)
}

extension IPAddress {
    init?(socketAddress: UnsafePointer<sockaddr>?) {
        guard let socketAddress else { return nil }
        switch Int32(socketAddress.pointee.sa_family) {
        case AF_INET:
            let address = UnsafeRawPointer(socketAddress).load(as: sockaddr_in.self)
            self.init(bytes: withUnsafeBytes(of: address.sin_addr) { Array($0) })
        case AF_INET6:
            let address = UnsafeRawPointer(socketAddress).load(as: sockaddr_in6.self)
            self.init(bytes: withUnsafeBytes(of: address.sin6_addr) { Array($0) })
        default:
            return nil
        }
    }
}
