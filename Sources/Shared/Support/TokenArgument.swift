import Foundation

public enum TokenArgument {
    /// A token given on the command line, or read from a file when written `@FILE`.
    public static func read(_ argument: String) throws -> String {
        if argument.hasPrefix("@") { return try Files.read(String(argument.dropFirst())).trimmingCharacters(in: .whitespacesAndNewlines) }
        return argument.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
