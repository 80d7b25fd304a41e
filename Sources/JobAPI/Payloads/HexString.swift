extension Sequence<UInt8> {
    /// Lower-case hex, two digits a byte: how digests (tenant IDs, request fingerprints) are shown.
    var hexString: String {
        var text = ""
        for byte in self {
            text.append(hexDigits[Int(byte >> 4)])
            text.append(hexDigits[Int(byte & 0x0F)])
        }
        return text
    }
}

private let hexDigits = Array("0123456789abcdef")
