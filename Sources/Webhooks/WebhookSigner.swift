import Crypto
import Foundation

/// Signs a webhook as the Standard Webhooks spec (v1) says: HMAC-SHA256 over
/// `"{webhook-id}.{webhook-timestamp}.{body}"` with the secret's decoded bytes, sent as
/// `webhook-signature: v1,{base64}`.
public enum WebhookSigner {
    public static func signature(id: String, timestamp: Int, body: [UInt8], key: [UInt8]) -> String {
        var message = Array("\(id).\(timestamp).".utf8)
        message.append(contentsOf: body)
        let mac = HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: key))
        return "v1," + Data(mac).base64EncodedString()
    }
}
