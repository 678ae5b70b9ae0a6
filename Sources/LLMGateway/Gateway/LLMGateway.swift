import AsyncHTTPClient
import Foundation
import GatewayKit
import Logging
import NIOCore
import Shared

/// The LLM gateway: an OpenAI-compatible API in front of every configured provider. For each
/// request it checks the caller, applies the guardrails, checks budgets, routes (cascade),
/// calls providers with retries, fallback and per-provider breakers, and records usage and an
/// audit event. Provider keys live only here.
public final class LLMGateway: Sendable {
    let service: String
    let config: LLMGatewayConfig
    let logger: Logger
    let control: LLMGatewayControl
    private let audit: AuditReporter
    let ledger = BudgetLedger()
    let breaker: CircuitBreaker
    let adapters: [String: ProviderAdapter]
    /// Model name → its configuration and provider.
    let catalog: [String: (model: ModelConfig, provider: ProviderConfig)]
    let state = Locked(State())
    private let tasks = Locked<[Task<Void, Never>]>([])
    /// Optional providers that did not answer their last probe.
    private let unavailable: Locked<Set<String>>
    /// Verifies the people agents act for.
    let people: PersonVerifier

    struct State {
        var view: GatewayView?
        var policy: LLMPolicy?
        var cascade: RoutingCascade?
        /// Why the service's policy cannot be followed (requests are refused until it is fixed).
        var policyProblem: String?
    }

    /// Responses kept for `previous_response_id` and `GET /v1/responses/{id}`.
    let responses: ResponseStore?

    /// `stateDirectory`: where the gateway keeps its own files (stored responses); in memory when nil.
    public init(service: String, config: LLMGatewayConfig, control: LLMGatewayControl, stateDirectory: String? = nil, logger: Logger) {
        do {
            responses = try ResponseStore(path: stateDirectory.map { "\($0)/responses-\(service).sqlite" })
        } catch {
            logger.error("stored responses unavailable: previous_response_id and GET /v1/responses will answer 503", metadata: ["error": "\(error)"])
            responses = nil
        }
        self.service = service
        breaker = CircuitBreaker(service: service)
        self.config = config
        self.control = control
        self.logger = logger
        self.audit = AuditReporter(control: control, logger: logger)
        self.people = PersonVerifier(logger: logger)
        var adapters: [String: ProviderAdapter] = [:]
        var catalog: [String: (ModelConfig, ProviderConfig)] = [:]
        for provider in config.providers {
            switch provider.type {
            case .openai, .azureOpenAI: adapters[provider.name] = OpenAIAdapter(config: provider)
            case .anthropic: adapters[provider.name] = AnthropicAdapter(config: provider)
            case .bedrock: adapters[provider.name] = BedrockAdapter(config: provider)
            case .vertex: adapters[provider.name] = VertexAdapter(config: provider)
            case .ollama: adapters[provider.name] = OllamaAdapter(config: provider)
            case .mock: adapters[provider.name] = MockAdapter(config: provider)
            }
            for model in provider.models { catalog[model.name] = (model, provider) }
        }
        self.adapters = adapters
        self.catalog = catalog
        self.unavailable = Locked(Set(config.providers.filter { $0.optional == true }.map(\.name)))
        state.withLock { $0.cascade = RoutingCascade(models: modelInfo(), policy: nil) }
    }

    /// The chat models of providers that are available now.
    func modelInfo() -> [String: RoutingCascade.ModelInfo] {
        let down = unavailable.current
        return catalog.filter { $0.value.model.embeddings != true && !down.contains($0.value.provider.name) }.mapValues {
            RoutingCascade.ModelInfo(name: $0.model.name, isPrivate: $0.provider.isPrivate, outputPrice: $0.model.outputPerMTok ?? 0)
        }
    }

    func available(_ provider: String) -> Bool { !unavailable.current.contains(provider) }

    /// The policy's labelled examples, embedded by its embeddings model (none without one).
    private func embedExamples(_ policy: LLMPolicy?) async -> [(vector: [Float], label: String)] {
        guard let name = policy?.routing?.embeddingModel else { return [] }
        let examples = RoutingCascade.examples(policy)
        guard let vectors = await embed(examples.map(\.text), model: name), vectors.count == examples.count else {
            logger.warning("routing examples not embedded by the embeddings model; the built-in embedder is used", metadata: ["model": "\(name)"])
            return []
        }
        return zip(vectors, examples).map { ($0, $1.class) }
    }

    private func embed(_ texts: [String], model name: String) async -> [[Float]]? {
        guard let (model, provider) = catalog[name], let adapter = adapters[provider.name] else { return nil }
        let request: JSONValue = .object(["model": .string(name), "input": .array(texts.map { .string($0) })])
        guard let response = try? await adapter.embed(request, model: model, deadline: .seconds(5)) else { return nil }
        return (response["data"]?.arrayValue ?? []).map { ($0["embedding"]?.arrayValue ?? []).compactMap { $0.numberValue.map(Float.init) } }
    }

    /// Probes optional providers (any HTTP answer within half a second counts as up).
    private func probeOptionalProviders() async {
        var changed = false
        for provider in config.providers where provider.optional == true {
            let base = (provider.baseURL ?? (provider.type == .ollama ? "http://127.0.0.1:11434" : "")).trimmingTrailingSlash
            let http = ProviderHTTP(provider: provider.name)
            let path = provider.type == .ollama ? "/api/tags" : "/"
            let probe = http.request(base + path, method: .GET, headers: [], body: nil)
            var up = false
            do {
                let response = try await ProviderHTTP.client.execute(probe.streamed, deadline: NIODeadline.now() + .milliseconds(500))
                up = response.status.code < 500
            } catch {
                up = false
            }
            let changedNow = unavailable.withLock { set in up ? set.remove(provider.name) != nil : set.insert(provider.name).inserted }
            if changedNow {
                changed = true
                logger.info(up ? "optional provider answers; its models are in use" : "optional provider stopped answering; its models are set aside",
                            metadata: ["provider": "\(provider.name)"])
            }
        }
        if changed { state.withLock { $0.cascade = RoutingCascade(models: modelInfo(), policy: $0.policy) } }
    }

    public func start() {
        let view = Task { [weak self] in
            while !Task.isCancelled {
                await self?.refreshView()
                let known = self?.state.current.view != nil
                try? await Task.sleep(for: .milliseconds(known ? 500 : 100))
            }
        }
        let usage = Task { [weak self] in
            var round = 0
            while !Task.isCancelled {
                await self?.reportUsage(refreshSpend: round % 20 == 0)
                round += 1
                try? await Task.sleep(for: .milliseconds(250))
            }
        }
        let probes = Task { [weak self] in
            while !Task.isCancelled {
                await self?.probeOptionalProviders()
                try? await Task.sleep(for: .seconds(30))
            }
        }
        tasks.withLock { $0 = [view, usage, probes] }
    }

    public func stop() async {
        for task in tasks.current { task.cancel() }
        // One attempt: usage that cannot be reported now is lost with this process (logged).
        let left = ledger.takeUnreported()
        if !left.isEmpty {
            do { try await control.reportUsage(left) } catch {
                logger.error("stopping with usage the controller did not receive", metadata: ["records": "\(left.count)", "error": "\(error)"])
            }
        }
        await audit.flush(deadline: .now + .seconds(3))
    }

    private func refreshView() async {
        do {
            guard let fresh = try await control.fetchView(known: state.current.view?.generation) else { return }
            var policy: LLMPolicy?
            var problem: String?
            let configs = fresh.configs.filter { $0.type == LLMPolicy.configType }
            if configs.count > 1 {
                // Two policies cannot both be followed, and picking one would silently drop the other's limits.
                problem = "the service has \(configs.count) llm-policy.v1 configs (\(configs.map(\.name).joined(separator: ", "))); an LLM gateway follows exactly one — merge them"
            } else if let config = configs.first {
                do { policy = try config.data.decode(LLMPolicy.self) } catch {
                    problem = "its llm-policy.v1 config '\(config.name)' cannot be read: \(error)"
                }
            }
            if let problem { logger.error("LLM policy cannot be followed; refusing requests", metadata: ["problem": "\(problem)"]) }
            let cascade = RoutingCascade(models: modelInfo(), policy: policy, providerExamples: await embedExamples(policy))
            people.update(signers: fresh.signers, delegations: fresh.delegations)
            state.withLock { $0.view = fresh; $0.policy = policy; $0.cascade = cascade; $0.policyProblem = problem }
        } catch {
            logger.debug("LLM gateway view not refreshed", metadata: ["error": "\(error)"])
        }
    }

    // MARK: API

    /// The caller with the person its `Authorization` names (verified, and delegated to this
    /// agent), or why it is refused — before anything reaches a provider. A request naming
    /// nobody is the agent's own, unless the policy requires a person.
    func identify(_ caller: Caller, authorization: String?) async -> Result<Caller, APIError> {
        await awaitView()
        let current = state.current
        let attributes = current.view?.callers[caller.identity] ?? []
        let refusal: PersonTokenError
        switch await people.person(authorization: authorization, agent: caller.identity, agentAttributes: attributes) {
        case .success(let person?):
            var identified = caller
            identified.person = person
            return .success(identified)
        case .success(nil):
            guard current.policy?.requirePerson == true else { return .success(caller) }
            refusal = .personRequired(service: service)
        case .failure(let error):
            refusal = error
        }
        var record = AuditRecord(caller: caller, project: nil, requested: "")
        record.refused = refusal.description
        record.status = refusal.status
        emit(record)
        let (type, code) = refusal.status == 403 ? ("permission_error", "person_not_delegated")
            : refusal.status == 503 ? ("service_unavailable", "person_keys_unavailable")
            : refusal == .personRequired(service: service) ? ("authentication_error", "person_required") : ("authentication_error", "invalid_person_token")
        return .failure(APIError(status: refusal.status, message: refusal.description, type: type, code: code))
    }

    /// What this caller may use of the models (everything without a `models` policy).
    func modelAccess(_ caller: Caller, teams: [String]) -> LLMPolicy.ModelAccess {
        state.current.policy?.modelAccess(identity: caller.identity, attributes: teams, person: caller.person)
            ?? LLMPolicy(models: nil).modelAccess(identity: caller.identity, attributes: teams, person: nil)
    }

    func models(for caller: Caller) -> JSONValue {
        let down = unavailable.current
        var names = Set(catalog.filter { !down.contains($0.value.provider.name) }.keys)
        for alias in (state.current.policy?.routing?.aliases ?? [:]).keys { names.insert(alias) }
        names.insert("auto")
        let access = modelAccess(caller, teams: state.current.view?.callers[caller.identity] ?? [])
        names = names.filter(access.permits)
        let data = names.sorted().map { name -> JSONValue in
            .object(["id": .string(name), "object": .string("model"), "created": .number(0),
                     "owned_by": .string(catalog[name]?.provider.name ?? "portless-router")])
        }
        return .object(["object": .string("list"), "data": .array(data)])
    }

    /// The caller's role attributes, once it is known to may dial this service, its policy can
    /// be followed, and the project it names (if any) is one it may bill.
    func admit(_ caller: Caller, project: String?) -> Result<[String], APIError> {
        let current = state.current
        guard let view = current.view else {
            return .failure(APIError(status: 503, message: "the gateway has not heard from the controller yet; retry in a second", type: "service_unavailable", code: nil))
        }
        if let problem = current.policyProblem {
            return .failure(APIError(status: 503, message: "this gateway's policy cannot be followed: \(problem)", type: "service_unavailable", code: "policy_invalid"))
        }
        guard let teams = view.callers[caller.identity] else {
            return .failure(APIError(status: 403, message: "identity '\(caller.identity)' has no Dial policy for '\(service)'", type: "permission_error", code: nil))
        }
        if let project, current.policy?.permits(project: project, identity: caller.identity, attributes: teams) != true {
            return .failure(APIError(status: 403, message: "project '\(project.prefix(64))' is not a project identity '\(caller.identity)' may bill (X-Portless-Project); the gateway's policy lists who may bill which project",
                                     type: "permission_error", code: "project_not_allowed"))
        }
        return .success(teams)
    }

    /// One model call, whichever API it came in by (`ingress`, named in the audit record): the
    /// request in chat form, and for the Messages API the original (`native`), sent as it is
    /// when the call goes to an Anthropic model.
    func chat(_ request: JSONValue, caller: Caller, project: String?, hint: String?, ingress: Ingress = .chat,
              native: NativeMessages? = nil) async -> ChatReply {
        let started = ContinuousClock.now
        var record = AuditRecord(caller: caller, project: project, requested: request["model"]?.stringValue ?? "")
        record.ingress = ingress
        let reply = await chat(request, caller: caller, project: project, hint: hint, native: native, record: &record)
        switch reply { case .stream, .nativeStream: return reply; default: break }  // a stream records itself when it ends
        record.finish(reply: reply, elapsed: ContinuousClock.now - started)
        emit(record)
        return reply
    }

    /// Before the first view arrives (the tunneler is still connecting), wait a little for it.
    func awaitView() async {
        var attempts = 0
        while !hasView, attempts < 30 {
            attempts += 1
            await refreshView()
            if !hasView { try? await Task.sleep(for: .milliseconds(100)) }
        }
    }

    private var hasView: Bool { state.withLock { $0.view != nil } }

    private func chat(_ request: JSONValue, caller: Caller, project: String?, hint: String?, native: NativeMessages?,
                      record: inout AuditRecord) async -> ChatReply {
        await awaitView()
        let teams: [String]
        switch admit(caller, project: project) { case .failure(let error): return .failure(error); case .success(let value): teams = value }
        guard let requested = request["model"]?.stringValue, !requested.isEmpty else {
            return .failure(.invalid("'model' is required: a model from GET /v1/models, or 'auto' to let the gateway route", code: "missing_model"))
        }
        guard let messages = request["messages"]?.arrayValue, !messages.isEmpty else {
            return .failure(.invalid("'messages' must be a non-empty array of chat messages", code: "invalid_messages"))
        }
        let current = state.current
        let guarded = Guardrails.apply(current.policy?.guardrails, to: request)
        record.verdicts = guarded.verdicts
        if let blocked = guarded.blocked { return .failure(APIError(status: 400, message: blocked, type: "invalid_request_error", code: "content_policy")) }

        let access = modelAccess(caller, teams: teams)
        guard let cascade = current.cascade else { return .failure(.invalid("no routing")) }
        // A model this caller may not use answers exactly as one that does not exist.
        if (cascade.aliasTable(requested) == nil && catalog[requested] == nil) || !access.permits(requested) {
            return .failure(Self.modelNotFound(requested))
        }
        let user = caller.person?.name
        let keys = BudgetLedger.keys(identity: caller.identity, teams: teams, project: project, user: user)
        if !(current.policy?.budgets ?? []).isEmpty { await loadSpend() }
        if let exceeded = ledger.check(current.policy?.budgets ?? [], identity: caller.identity, teams: teams, project: project, user: user) {
            record.budget = exceeded.message
            return .failure(APIError(status: 429, message: exceeded.message, type: "insufficient_quota", code: "budget_exceeded"))
        }
        var classify: (@Sendable (String) async -> String?)?
        if let classifier = current.policy?.routing?.classifierModel {
            classify = { [weak self] text in await self?.classify(text, with: classifier) }
        }
        var embed: (@Sendable (String) async -> [Float]?)?
        if let model = current.policy?.routing?.embeddingModel {
            embed = { [weak self] text in await self?.embed([text], model: model)?.first }
        }
        var decision = await cascade.decide(model: requested, request: guarded.request, privateOnly: guarded.privateOnly, hint: hint,
                                            classify: classify, embed: embed)
        decision.models.removeAll(where: access.denies)
        record.route = decision
        guard !decision.models.isEmpty else {
            return .failure(.invalid("no model may take this request (\(decision.reason)); a private model is needed — configure one (ollama or mock) in the routing policy", code: "no_route"))
        }
        ledger.admitted(keys: keys)
        let headers = [("x-portless-route", decision.models.first ?? ""), ("x-portless-route-class", decision.routeClass ?? "explicit"),
                       ("x-portless-route-reason", decision.reason)]
        // The original goes to an Anthropic model only as the caller wrote it: not once a guardrail changed it.
        let native = guarded.request == request ? native : nil
        if request["stream"]?.boolValue == true {
            return await stream(guarded.request, decision: decision, headers: headers, keys: keys, native: native, record: record)
        }
        let deadline = Duration.milliseconds(config.timeoutMs ?? 60_000)
        var failures: [String] = []
        var unsupported: [String] = []
        for name in decision.models {
            guard let (model, provider) = catalog[name], let adapter = adapters[provider.name], available(provider.name) else { continue }
            let passThrough = native != nil && provider.type == .anthropic
            if !passThrough, let why = adapter.unsupported(guarded.request, model: model) { unsupported.append("\(name): \(why)"); continue }
            guard breaker.allows(provider.name) else { failures.append("\(name): provider '\(provider.name)' is failing (breaker open)"); continue }
            for attempt in 0...(config.retries ?? 2) {
                if attempt > 0 { try? await Task.sleep(for: .milliseconds(100 << (attempt - 1))) }
                do {
                    if passThrough, let native, let anthropic = adapter as? AnthropicAdapter {
                        let message = try await anthropic.passThrough(native, model: model, deadline: deadline).setting("model", .string(name))
                        breaker.succeeded(provider.name)
                        await account(TokenUsage(anthropic: message["usage"]), caller: record.caller, project: project, model: model, provider: provider,
                                      keys: keys, record: &record)
                        record.failures = failures
                        return .native(message, headers: headers + [("x-portless-model", name)])
                    }
                    var response = try await adapter.complete(guarded.request, model: model, deadline: deadline)
                    breaker.succeeded(provider.name)
                    response = response.setting("model", .string(name))
                    let text = (response["choices"]?.arrayValue ?? []).map { ChatText.content($0["message"] ?? .null) }.joined()
                    let counted = TokenUsage(openAI: response["usage"]) ?? .estimate(request: guarded.request, output: text)
                    if counted.estimated { response = response.setting("usage", counted.openAI) }
                    await account(counted, caller: record.caller, project: project, model: model, provider: provider, keys: keys, record: &record)
                    record.failures = failures
                    return .json(response, headers: headers + [("x-portless-model", name)])
                } catch let error as ProviderError {
                    failures.append("\(name): \(error)")
                    logger.warning("provider call failed", metadata: ["model": "\(name)", "attempt": "\(attempt + 1)", "error": "\(error)"])
                    breaker.record(error, for: provider.name)
                    if !error.retryable { record.failures = failures; return .failure(Self.apiError(error)) }
                } catch {
                    breaker.released(provider.name)
                    if Task.isCancelled { record.failures = failures + ["the caller went away"]; return .failure(Self.cancelled) }
                    failures.append("\(name): \(error)")
                }
            }
        }
        record.failures = failures + unsupported
        if failures.isEmpty && !unsupported.isEmpty { return .failure(Self.unsupportedError(unsupported)) }
        return .failure(APIError(status: 502, message: "every model for this request failed: \(failures.joined(separator: "; "))", type: "api_error", code: "upstream_failed"))
    }

    /// No model the request may go to can honor one of its parameters: a 400 that names them,
    /// never a parameter silently dropped.
    static func unsupportedError(_ reasons: [String]) -> APIError {
        APIError(status: 400, message: "no model this request may go to supports it: \(reasons.joined(separator: "; "))", type: "invalid_request_error",
                 code: "unsupported_parameter")
    }

    func embeddings(_ request: JSONValue, caller: Caller, project: String?) async -> ChatReply {
        let started = ContinuousClock.now
        var record = AuditRecord(caller: caller, project: project, requested: request["model"]?.stringValue ?? "")
        let reply: ChatReply
        await awaitView()
        switch admit(caller, project: project) {
        case .failure(let error): reply = .failure(error)
        case .success(let teams):
            let guarded = Guardrails.apply(state.current.policy?.guardrails, to: request)
            record.verdicts = guarded.verdicts
            let requested = request["model"]?.stringValue ?? catalog.values.first { $0.model.embeddings == true }?.model.name ?? ""
            // Personal data under `private`: only a private embeddings model may see it.
            let name = guarded.privateOnly && catalog[requested]?.provider.isPrivate != true
                ? catalog.values.filter { $0.model.embeddings == true && $0.provider.isPrivate }.map(\.model.name).sorted().first
                : requested
            if let blocked = guarded.blocked {
                reply = .failure(APIError(status: 400, message: blocked, type: "invalid_request_error", code: "content_policy"))
            } else if request["input"] == nil {
                reply = .failure(.invalid("'input' is required: a string or an array of strings"))
            } else if name == nil {
                reply = .failure(.invalid("this input holds personal data (\(guarded.piiTypes.joined(separator: ", "))), which this gateway's policy keeps on private models, and no private embeddings model is configured", code: "no_route"))
            } else if let name, let (model, provider) = catalog[name], let adapter = adapters[provider.name],
                      modelAccess(caller, teams: teams).permits(requested), !modelAccess(caller, teams: teams).denies(name) {
                let request = guarded.request
                let user = caller.person?.name
                let keys = BudgetLedger.keys(identity: caller.identity, teams: teams, project: project, user: user)
                if let exceeded = ledger.check(state.current.policy?.budgets ?? [], identity: caller.identity, teams: teams, project: project, user: user) {
                    reply = .failure(APIError(status: 429, message: exceeded.message, type: "insufficient_quota", code: "budget_exceeded"))
                } else {
                    do {
                        let response = try await adapter.embed(request, model: model, deadline: .milliseconds(config.timeoutMs ?? 60_000))
                        let tokens = response["usage"]?["prompt_tokens"].count() ?? 0
                        await account(TokenUsage(input: tokens), caller: caller, project: project, model: model, provider: provider, keys: keys, record: &record)
                        reply = .json(response, headers: [("x-portless-model", name)])
                    } catch let error as ProviderError {
                        breaker.record(error, for: provider.name)
                        reply = .failure(Self.apiError(error))
                    } catch {
                        reply = .failure(Task.isCancelled ? Self.cancelled : APIError(status: 502, message: "provider '\(provider.name)' failed", type: "api_error", code: nil))
                    }
                }
            } else {
                reply = .failure(Self.modelNotFound(requested))
            }
        }
        record.finish(reply: reply, elapsed: ContinuousClock.now - started)
        emit(record)
        return reply
    }

    private func classify(_ text: String, with modelName: String) async -> String? {
        guard let (model, provider) = catalog[modelName], let adapter = adapters[provider.name] else { return nil }
        let prompt: JSONValue = .object(["messages": .array([
            .object(["role": .string("system"), "content": .string("Classify the user's request as exactly one word: cost, latency, sensitive or quality.")]),
            .object(["role": .string("user"), "content": .string(String(text.prefix(4_000)))]),
        ]), "max_tokens": .number(3), "temperature": .number(0)])
        guard let answer = try? await adapter.complete(prompt, model: model, deadline: .seconds(5)) else { return nil }
        let word = (answer["choices"]?.arrayValue?.first?["message"]?["content"]?.stringValue ?? "").lowercased()
        return LLMPolicy.classes.first { word.contains($0) }
    }

    func emit(_ record: AuditRecord) {
        observe(record)
        // Encoded when its batch is sent, not on the request's path; the trace is the request's.
        let trace = TraceContext.current?.traceID
        audit.record {
            GatewayAuditEvent(type: "llm.request", identity: record.caller.identity, user: record.caller.person?.name,
                              circuit: record.caller.circuit, detail: String(decoding: record.detail(traceID: trace).encoded(), as: UTF8.self))
        }
    }

    static func modelNotFound(_ name: String) -> APIError {
        APIError(status: 404, message: "model '\(name.prefix(128))' does not exist here; GET /v1/models lists the models and aliases",
                 type: "invalid_request_error", code: "model_not_found")
    }

    /// What a request the caller abandoned is recorded as (nobody reads the answer).
    static let cancelled = APIError(status: 499, message: "the caller closed the connection", type: "api_error", code: "client_closed")

    static func apiError(_ error: ProviderError) -> APIError {
        switch error {
        case .http(let status, let message):
            return APIError(status: status == 429 ? 429 : status >= 500 ? 502 : status, message: message, type: status == 429 ? "rate_limit_error" : "api_error", code: "upstream_error")
        case .timeout(let message): return APIError(status: 504, message: message, type: "api_error", code: "upstream_timeout")
        case .configuration(let message): return APIError(status: 500, message: message, type: "api_error", code: "gateway_configuration")
        // The provider refused the gateway's key: not the caller's credentials, so not a 401.
        case .credentials(let message): return APIError(status: 502, message: message, type: "api_error", code: "provider_credentials")
        default: return APIError(status: 502, message: error.description, type: "api_error", code: "upstream_error")
        }
    }
}
