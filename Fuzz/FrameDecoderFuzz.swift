// libFuzzer entry for the frame decoder: `make fuzz` builds it with the decoder's own sources and
// runs it. Every input must yield a frame, a request for more bytes, or a refusal; a frame must
// fit the input and the limit; a request for more must ask for more than was given.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzFrameDecoder(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    let limit = 4096
    switch FrameDecoder.decode(bytes, maxFrame: limit) {
    case .frame(let frame, let consumed):
        precondition(consumed <= size && consumed == frame.header.frameLength && consumed <= limit)
        precondition(frame.body.count == Int(frame.header.bodyLength))
    case .needMore(let total):
        precondition(total > size)
    case .invalid:
        break
    }
    return 0
}
