/// Matches a policy's role list against an entity: `#all` matches everything, `#attr` an entity
/// carrying the attribute, `@name` the entity with that name. Any match in the list is a match.
public enum RoleExpression {
    public static func matches(_ expressions: [String], name: String, attributes: [String]) -> Bool {
        for expression in expressions {
            if expression == "#all" { return true }
            if expression.hasPrefix("@"), expression.dropFirst() == name { return true }
            if expression.hasPrefix("#"), attributes.contains(String(expression.dropFirst())) { return true }
        }
        return false
    }

    /// Why an expression list is not valid, or nil.
    public static func problem(in expressions: [String]) -> String? {
        for expression in expressions where !(expression.hasPrefix("#") || expression.hasPrefix("@")) || expression.count < 2 {
            return "role expression '\(expression)' must be '#attribute', '@name' or '#all'"
        }
        return nil
    }
}
