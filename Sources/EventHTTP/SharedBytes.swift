import CLibevent

/// Bytes that many streamed replies send without copying them each: every reply's output
/// buffer refers to this one copy (`evbuffer_add_reference`), and it is freed when the last
/// reply has written it or dropped it. For one batch of events sent to many streams.
///
/// ```swift
/// let batch = SharedBytes(rendered)
/// for request in streams { request.sendChunk(batch) }
/// ```
public final class SharedBytes: Sendable {
    // Sendable: the memory is written once in init and only read afterwards (by libevent's
    // writes); the last reference may be dropped on whichever thread frees a buffer.
    nonisolated(unsafe) let pointer: UnsafeMutableRawPointer
    public let count: Int

    public init(_ bytes: [UInt8]) {
        count = bytes.count
        pointer = UnsafeMutableRawPointer.allocate(byteCount: max(1, bytes.count), alignment: 1)
        bytes.withUnsafeBytes { source in
            if let base = source.baseAddress { pointer.copyMemory(from: base, byteCount: source.count) }
        }
    }

    deinit { pointer.deallocate() }
}

/// libevent's clean-up for a reference added by ``HTTPRequest/sendChunk(_:)-(SharedBytes)``:
/// gives back the reference taken for it.
func sharedBytesReleased(_ data: UnsafeRawPointer?, _ length: Int, _ context: UnsafeMutableRawPointer?) {
    guard let context else { return }
    Unmanaged<SharedBytes>.fromOpaque(context).release()
}
