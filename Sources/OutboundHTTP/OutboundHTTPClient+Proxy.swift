/// Transfers through the egress proxy. curl connects to the proxy there, so the socket-open
/// check never sees the destination; had curl followed redirects itself, a hop to
/// `http://127.0.0.1/` would have reached the proxy unchecked (issue 13). So jobpool follows
/// them here, one hop at a time, and checks each hop's host before curl sends it on.
extension OutboundHTTPClient {
    /// Performs `request` through the proxy, following its redirects as curl would: relative
    /// `Location`s resolved by curl, `303` (and `301`/`302` after a POST) continued as a GET, at
    /// most `maxRedirects` hops, all within `timeout`.
    func performThroughProxy(_ request: OutboundRequest, session: CurlSession, abort: AbortHandle,
                             receive: ((UnsafeRawBufferPointer) -> Void)? = nil) -> Result<OutboundResponse, OutboundFailure> {
        let started = ContinuousClock.now
        var hop = request
        hop.followRedirects = false
        var redirects = 0
        while true {
            guard let target = OutboundURL(hop.url) else {
                return .failure(.protocolError("\(hop.url.prefix(200)) is not an absolute http or https URL"))
            }
            if let address = target.address, let refusal = configuration.policy.check(address) {
                return .failure(.blockedAddress(refusal))
            }
            // In a UTF-8 locale curl would turn a name into ASCII by IDNA after this check, and
            // "①②⑦.0.0.1" into 127.0.0.1; in jobpool's C locale it refuses such a URL. Refuse it
            // here, so that the check does not depend on the process locale.
            guard target.host.allSatisfy(\.isASCII) else {
                return .failure(.protocolError("\(hop.url.prefix(200)) does not have an ASCII host; write an internationalized name in its xn-- form"))
            }
            hop.timeout = request.timeout - (ContinuousClock.now - started)
            guard hop.timeout > .zero else {
                return .failure(.timeout("the redirects took longer than the whole timeout"))
            }
            switch session.perform(hop, configuration: configuration, abort: abort, receive: receive) {
            case .success(var response):
                guard request.followRedirects, let location = response.redirectLocation else {
                    response.redirects = redirects
                    response.elapsed = ContinuousClock.now - started
                    return .success(response)
                }
                guard redirects < request.maxRedirects else { return .failure(.tooManyRedirects(limit: request.maxRedirects)) }
                guard OutboundURL(location) != nil else {
                    return .failure(.protocolError("redirect to \(location.prefix(200)) (only http and https are fetched, also on redirects)"))
                }
                redirects += 1
                if response.status == 303 || (hop.body != nil && (response.status == 301 || response.status == 302)) {
                    hop.body = nil
                }
                hop.url = location
            case .failure(let failure):
                return .failure(failure)
            }
        }
    }
}
