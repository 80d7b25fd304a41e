import Testing
@testable import JobAPI

/// `Prefer` is read leniently (RFC 7240: a preference that cannot be read is ignored), and no
/// header a client sends can stop the server.
@Suite("Prefer header")
struct PreferHeaderTests {
    @Test("wait is read from any place in the header, with parameters and quotes, capped at the limit")
    func waitIsRead() {
        #expect(PreferHeader.wait(in: "wait=10", limit: 60) == 10)
        #expect(PreferHeader.wait(in: "respond-async, wait=5", limit: 60) == 5)
        #expect(PreferHeader.wait(in: " WAIT = \"7\" ;x=1", limit: 60) == 7)
        #expect(PreferHeader.wait(in: "wait=600", limit: 60) == 60)
        #expect(PreferHeader.wait(in: nil, limit: 60) == nil)
    }

    @Test("headers with empty or malformed preferences are ignored, not fatal", arguments: [
        ";", ";;", ",", ", ;", "; wait=5", "=", "wait", "wait=", "wait=-1", "wait=x", "wait=99999999999999999999999",
    ])
    func malformedIsIgnored(header: String) {
        #expect(PreferHeader.wait(in: header, limit: 60) == nil)
    }

    @Test("a submission with Prefer: ; is accepted, and the server goes on answering")
    func emptyPreferenceOverHTTP() async throws {
        let server = try TestServer()
        defer { server.stop() }
        let response = try await server.client.submitWriteCode(min: 0, max: 0, headers: ["Prefer": ";"])
        #expect(response.status == 202)
        #expect(try await server.client.get("/healthz").status == 200)
    }
}
