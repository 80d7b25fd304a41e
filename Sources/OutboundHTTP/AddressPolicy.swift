/// Decides which addresses outbound requests may connect to: the SSRF guard.
///
/// By default every range of the IANA special-purpose registries that is not globally
/// reachable is refused, in IPv4 and IPv6 (loopback, private-use, link-local with the cloud
/// metadata address 169.254.169.254, CGNAT, documentation, benchmarking, reserved, ...), and
/// multicast; see ``SpecialRange/table``. The IPv4-mapped, NAT64 and 6to4 forms of an IPv4
/// address are judged as that IPv4 address. An operator opens chosen ranges with
/// `--allow-cidr`, or all of them with `--allow-private-networks`.
///
/// Without a proxy the check runs on the address curl is about to connect to, for every
/// connection of every redirect hop, so neither DNS rebinding nor a redirect to an internal
/// host gets past it. With a proxy it runs on each hop's literal host (``OutboundURL/address``).
///
/// ```swift
/// AddressPolicy().check(IPAddress("::1")!)?.rangeName // "loopback"
/// ```
public struct AddressPolicy: Sendable {
    /// A refused address, and why.
    public struct Refusal: Sendable, Equatable {
        public var address: IPAddress
        /// The refused range's name, as in "in the loopback range".
        public var rangeName: String
    }

    /// Ranges opened by `--allow-cidr`.
    public var allowed: [CIDR]
    /// `--allow-private-networks`: nothing is refused.
    public var allowsPrivateNetworks: Bool

    public init(allowed: [CIDR] = [], allowsPrivateNetworks: Bool = false) {
        self.allowed = allowed
        self.allowsPrivateNetworks = allowsPrivateNetworks
    }

    /// `nil` if `address` may be connected to, else the refusal.
    public func check(_ address: IPAddress) -> Refusal? {
        if allowsPrivateNetworks || isAllowed(address) { return nil }
        guard let special = SpecialRange.containing(address) else { return nil }
        switch special.verdict {
        case .globallyReachable:
            return nil
        case .refused:
            return Refusal(address: address, rangeName: special.name)
        case .judgedAsEmbeddedIPv4:
            // Always present for this verdict; the inner address alone decides.
            guard let inner = address.embeddedIPv4, !isAllowed(inner),
                  let innerRange = SpecialRange.containing(inner), innerRange.verdict == .refused else { return nil }
            return Refusal(address: address, rangeName: innerRange.name)
        }
    }

    private func isAllowed(_ address: IPAddress) -> Bool {
        allowed.contains { $0.contains(address) }
    }

    /// What an operator can pass to allow `refusal`'s address.
    public static func advice(for refusal: Refusal) -> String {
        // The IPv6 forms that reach an IPv4 address are allowed along with that address.
        let address = refusal.address.embeddedIPv4 ?? refusal.address
        let single = address.isIPv4 ? "\(address)/32" : "\(address)/128"
        return "start jobpool with --allow-cidr \(single) (or JOBPOOL_ALLOW_CIDRS=\(single)), or with --allow-private-networks to allow every private range"
    }
}
