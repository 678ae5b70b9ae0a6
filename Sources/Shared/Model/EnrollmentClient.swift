import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Posts an enrollment request synchronously (enrollment runs once, before any event loop).
public enum EnrollmentClient {
    public static func post(_ url: URL, _ request: EnrollmentRequest) throws -> EnrollmentResponse {
        var urlRequest = URLRequest(url: url)
        urlRequest.httpMethod = "POST"
        urlRequest.setValue("application/json", forHTTPHeaderField: "Content-Type")
        urlRequest.httpBody = try JSONEncoder().encode(request)
        urlRequest.timeoutInterval = 15
        let result = Locked<Result<(Data, Int), Error>?>(nil)
        let done = DispatchSemaphore(value: 0)
        URLSession.shared.dataTask(with: urlRequest) { data, response, error in
            if let error { result.withLock { $0 = .failure(error) } }
            else { result.withLock { $0 = .success((data ?? Data(), (response as? HTTPURLResponse)?.statusCode ?? 0)) } }
            done.signal()
        }.resume()
        done.wait()
        switch result.current {
        case .none: throw EnrollmentClientError.noResponse(url)
        case .failure(let error): throw EnrollmentClientError.unreachable(url, error.localizedDescription)
        case .success(let (data, status)):
            guard status == 200 else {
                throw EnrollmentClientError.refused(status: status, message: APIErrorText.message(from: data))
            }
            do { return try JSONDecoder().decode(EnrollmentResponse.self, from: data) } catch {
                throw EnrollmentClientError.refused(status: status, message: "unreadable response")
            }
        }
    }
}

public enum EnrollmentClientError: Error, CustomStringConvertible {
    case noResponse(URL)
    case unreachable(URL, String)
    case refused(status: Int, message: String)

    public var description: String {
        switch self {
        case .noResponse(let url): return "no response from \(url)"
        case .unreachable(let url, let why): return "cannot reach the controller at \(url): \(why)"
        case .refused(let status, let message): return "enrollment refused (HTTP \(status)): \(message)"
        }
    }
}

/// Extracts the message of an API error body (Hummingbird's `{"error":{"message":…}}`).
public enum APIErrorText {
    public static func message(from data: Data) -> String {
        if let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] {
            if let error = object["error"] as? [String: Any], let message = error["message"] as? String { return message }
            if let message = object["error"] as? String { return message }
        }
        return String(decoding: data.prefix(500), as: UTF8.self)
    }
}
