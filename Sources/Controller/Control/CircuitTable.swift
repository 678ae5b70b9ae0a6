/// The circuits the controller knows, with what every dial reads kept current as circuits come
/// and go: how many each identity has open (its limit) and how many each terminator carries (its
/// load). A dial then costs O(1), however many circuits the network holds.
struct CircuitTable: Sequence {
    private var byID: [UInt64: ControlPlane.Circuit] = [:]
    private var perDialer: [String: Int] = [:]
    private var perTerminator: [String: Int] = [:]

    subscript(id: UInt64) -> ControlPlane.Circuit? {
        get { byID[id] }
        set {
            if let old = byID[id] { count(old, -1) }
            byID[id] = newValue
            if let newValue { count(newValue, 1) }
        }
    }

    @discardableResult
    mutating func removeValue(forKey id: UInt64) -> ControlPlane.Circuit? {
        guard let old = byID.removeValue(forKey: id) else { return nil }
        count(old, -1)
        return old
    }

    private mutating func count(_ circuit: ControlPlane.Circuit, _ delta: Int) {
        perDialer[circuit.dialer, default: 0] += delta
        if perDialer[circuit.dialer] == 0 { perDialer.removeValue(forKey: circuit.dialer) }
        perTerminator[circuit.terminatorID, default: 0] += delta
        if perTerminator[circuit.terminatorID] == 0 { perTerminator.removeValue(forKey: circuit.terminatorID) }
    }

    func open(by dialer: String) -> Int { perDialer[dialer] ?? 0 }
    func load(of terminator: String) -> Int { perTerminator[terminator] ?? 0 }

    var values: Dictionary<UInt64, ControlPlane.Circuit>.Values { byID.values }
    var count: Int { byID.count }
    func makeIterator() -> Dictionary<UInt64, ControlPlane.Circuit>.Iterator { byID.makeIterator() }
}
