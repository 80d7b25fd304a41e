import Foundation
import Testing

/// Checks a Standard Webhooks signature independently, with Python's hmac module.
func verify(_ request: FetchTargetServer.Request, secret: String) throws -> Bool {
    let id = try #require(request.headers["webhook-id"])
    let timestamp = try #require(request.headers["webhook-timestamp"])
    let signature = try #require(request.headers["webhook-signature"])
    let script = """
    import base64, hashlib, hmac, sys
    key = base64.b64decode(sys.argv[1].removeprefix("whsec_"))
    body = sys.stdin.buffer.read()
    mac = hmac.new(key, sys.argv[2].encode() + b"." + sys.argv[3].encode() + b"." + body, hashlib.sha256).digest()
    print("v1," + base64.b64encode(mac).decode())
    """
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", "-c", script, secret, id, timestamp]
    let input = Pipe(), output = Pipe()
    process.standardInput = input
    process.standardOutput = output
    try process.run()
    input.fileHandleForWriting.write(Data(request.body))
    try input.fileHandleForWriting.close()
    let expected = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        .trimmingCharacters(in: .whitespacesAndNewlines)
    process.waitUntilExit()
    return signature.split(separator: " ").contains { $0 == expected }
}
