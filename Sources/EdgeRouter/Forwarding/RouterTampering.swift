import Shared

/// Seams for tests that play a compromised router (Tests/HostileRouter): what such a router can
/// do to circuits it carries — answer a dial as it likes, drop, forge or inject frames. A
/// production router runs with none, and nothing a peer sends can install one: it is an
/// argument of `RouterNode`'s initializer that only the test-only binary passes.
public protocol RouterTampering: AnyObject {
    /// The `.dialed` answer about to go to a dialing tunneler; return what to send instead.
    func dialed(_ answer: ControlMessage) -> ControlMessage
    /// A circuit frame about to be forwarded, from the dialer's side or the host's. Return true
    /// when the tampering took it (sent something else, or nothing); false forwards it as usual.
    func intercept(_ frame: FrameView, fromDialer: Bool, dialerSide: FramedChannel?, hostSide: FramedChannel?) -> Bool
}
