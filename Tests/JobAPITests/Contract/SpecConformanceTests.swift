import Foundation
import JobCore
import Testing
@testable import JobAPI

/// The server's routes and `openapi/openapi.yaml` must list the same operations.
@Suite("OpenAPI contract")
struct SpecConformanceTests {
    private static let specURL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("openapi/openapi.yaml")

    /// `METHOD /path` for every operation under `paths:` in the spec. The spec is written with
    /// paths at two spaces and methods at four, which this reads without a YAML library.
    static func specOperations() throws -> Set<String> {
        let text = try String(contentsOf: specURL, encoding: .utf8)
        var operations = Set<String>()
        var inPaths = false
        var currentPath: String?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if !line.hasPrefix(" ") && !line.isEmpty { inPaths = line == "paths:"; currentPath = nil; continue }
            guard inPaths else { continue }
            if line.hasPrefix("  /"), line.hasSuffix(":"), !line.hasPrefix("   ") {
                currentPath = String(line.dropFirst(2).dropLast())
            } else if let currentPath, line.hasPrefix("    "), !line.hasPrefix("     ") {
                let key = line.trimmingCharacters(in: .whitespaces).dropLast()
                if ["get", "post", "put", "patch", "delete", "head", "options"].contains(key) {
                    operations.insert("\(key.uppercased()) \(currentPath)")
                }
            }
        }
        return operations
    }

    @Test("every route is in the spec, and every operation in the spec is a route")
    func routesMatchSpec() throws {
        let routes = Set(Router.table.map { "\($0.method.rawValue) \($0.template)" })
        let spec = try Self.specOperations()
        #expect(!spec.isEmpty)
        #expect(routes.subtracting(spec).sorted() == [], "routes missing from openapi.yaml")
        #expect(spec.subtracting(routes).sorted() == [], "operations in openapi.yaml that the server lacks")
    }

    @Test("the server serves its own spec at /openapi.yaml")
    func servesSpec() async throws {
        let server = try TestServer()
        defer { server.stop() }
        let response = try await server.client.get("/openapi.yaml")
        #expect(response.status == 200)
        #expect(response.body == (try Data(contentsOf: Self.specURL)))
    }

    @Test("the spec's error-code vocabulary is the one the core uses")
    func errorCodes() throws {
        let text = try String(contentsOf: Self.specURL, encoding: .utf8)
        #expect(JobFailure.vocabulary.count >= 13)
        for code in JobFailure.vocabulary {
            #expect(text.contains("- \(code)\n"), "error code \(code) missing from the JobErrorCode enum")
        }
    }
}
