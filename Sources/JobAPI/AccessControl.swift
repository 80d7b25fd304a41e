import Crypto
import Foundation

/// API keys: `Authorization: Bearer <key>` on the `/v1` routes when any key is configured.
///
/// Keys are kept only as SHA-256 digests and compared in constant time (every configured key is
/// compared, whatever matches). Each key is one tenant: its jobs carry an owner ID derived from
/// the key by a different hash, so neither the key nor its digest is ever stored with a job.
struct AccessControl: Sendable {
    private struct Tenant: Sendable {
        var digest: [UInt8]
        var owner: String
    }

    private let tenants: [Tenant]
    private let metricsDigest: [UInt8]?
    /// The operator opened `/metrics` on purpose although API keys are on.
    private let metricsArePublic: Bool

    /// - Parameter publicMetrics: leave `/metrics` open when API keys are configured but no
    ///   metrics key is (otherwise it is closed: it shows every tenant's job counts).
    init(apiKeys: [String], metricsKey: String?, publicMetrics: Bool = false) {
        metricsArePublic = publicMetrics
        tenants = apiKeys.map { key in
            let owner = SHA256.hash(data: Data(("jobpool-tenant:" + key).utf8)).prefix(12).hexString
            return Tenant(digest: Self.digest(key), owner: owner)
        }
        metricsDigest = metricsKey.map(Self.digest)
    }

    var isEnabled: Bool { !tenants.isEmpty }

    /// What an `Authorization` header proves.
    enum Verdict: Equatable {
        case tenant(owner: String)
        case missing
        case invalid
    }

    func verify(_ authorization: String?) -> Verdict {
        guard let presented = Self.bearerToken(authorization) else { return .missing }
        let digest = Self.digest(presented)
        var match: String?
        for tenant in tenants where Self.constantTimeEqual(tenant.digest, digest) && match == nil {
            match = tenant.owner
        }
        return match.map { .tenant(owner: $0) } ?? .invalid
    }

    /// What `/metrics` makes of an `Authorization` header.
    enum MetricsVerdict: Equatable {
        case allowed
        case missing
        case invalid
        /// API keys are on and no metrics key is configured, so no request may read metrics.
        case closed
    }

    /// With a metrics key, it must be presented; without one, metrics are open unless API keys
    /// are on (and the operator did not open them on purpose).
    func verifyMetrics(_ authorization: String?) -> MetricsVerdict {
        guard let metricsDigest else { return isEnabled && !metricsArePublic ? .closed : .allowed }
        guard let presented = Self.bearerToken(authorization) else { return .missing }
        return Self.constantTimeEqual(metricsDigest, Self.digest(presented)) ? .allowed : .invalid
    }

    private static func bearerToken(_ header: String?) -> String? {
        guard let header, header.count > 7, header.prefix(7).lowercased() == "bearer " else { return nil }
        let token = header.dropFirst(7).trimmingCharacters(in: .whitespaces)
        return token.isEmpty ? nil : token
    }

    private static func digest(_ key: String) -> [UInt8] {
        Array(SHA256.hash(data: Data(key.utf8)))
    }

    /// Compares two equal-length digests without an early exit.
    private static func constantTimeEqual(_ left: [UInt8], _ right: [UInt8]) -> Bool {
        guard left.count == right.count else { return false }
        var difference: UInt8 = 0
        for index in left.indices { difference |= left[index] ^ right[index] }
        return difference == 0
    }
}
