import Foundation

/// One model call's usage as an LLM gateway reports it to the controller.
public struct LLMUsageRecord: Codable, Sendable, Equatable {
    public var at: Date
    public var identity: String
    /// The person the agent acted for, when it presented their token.
    public var user: String?
    public var project: String?
    public var model: String
    public var provider: String
    public var inputTokens: Int
    public var outputTokens: Int
    public var costUSD: Double
    /// Parts of the input and output with their own prices (included in the totals above).
    public var cachedInputTokens: Int?
    public var cacheWriteTokens: Int?
    public var reasoningTokens: Int?
    /// The provider gave no count: the tokens are the gateway's estimate.
    public var estimated: Bool?
    /// The model has no price in the gateway's configuration: the cost is unknown, not zero.
    public var unpriced: Bool?

    public init(at: Date, identity: String, user: String? = nil, project: String?, model: String, provider: String, inputTokens: Int, outputTokens: Int,
                costUSD: Double, cachedInputTokens: Int? = nil, cacheWriteTokens: Int? = nil, reasoningTokens: Int? = nil,
                estimated: Bool? = nil, unpriced: Bool? = nil) {
        self.at = at; self.identity = identity; self.user = user; self.project = project; self.model = model; self.provider = provider
        self.inputTokens = inputTokens; self.outputTokens = outputTokens; self.costUSD = costUSD
        self.cachedInputTokens = cachedInputTokens; self.cacheWriteTokens = cacheWriteTokens; self.reasoningTokens = reasoningTokens
        self.estimated = estimated; self.unpriced = unpriced
    }
}

/// Spend so far (UTC day and month) per budget key: `identity:NAME`, `team:ATTR`, `project:NAME`,
/// `user:NAME`.
public struct LLMSpend: Codable, Sendable, Equatable {
    public var day: String
    public var month: String
    public var daily: [String: Double]
    public var monthly: [String: Double]

    public init(day: String, month: String, daily: [String: Double], monthly: [String: Double]) {
        self.day = day; self.month = month; self.daily = daily; self.monthly = monthly
    }
}

/// A row of `portless usage --by KEY`.
public struct LLMUsageRow: Codable, Sendable, Equatable {
    public var key: String
    public var requests: Int
    public var inputTokens: Int
    public var outputTokens: Int
    public var costUSD: Double
    public var cachedInputTokens: Int?
    public var reasoningTokens: Int?
    /// Requests whose tokens are the gateway's estimate (the provider gave no count).
    public var estimatedRequests: Int?
    /// Requests to models without a price: `costUSD` leaves them out.
    public var unpricedRequests: Int?

    public init(key: String, requests: Int, inputTokens: Int, outputTokens: Int, costUSD: Double, cachedInputTokens: Int? = nil,
                reasoningTokens: Int? = nil, estimatedRequests: Int? = nil, unpricedRequests: Int? = nil) {
        self.key = key; self.requests = requests; self.inputTokens = inputTokens; self.outputTokens = outputTokens; self.costUSD = costUSD
        self.cachedInputTokens = cachedInputTokens; self.reasoningTokens = reasoningTokens
        self.estimatedRequests = estimatedRequests; self.unpricedRequests = unpricedRequests
    }
}

/// `GET /v1/llm/usage/daily`: cost per UTC day and key.
public struct LLMDailyUsage: Codable, Sendable, Equatable {
    public var day: String
    public var key: String
    public var requests: Int
    public var costUSD: Double
    public init(day: String, key: String, requests: Int, costUSD: Double) {
        self.day = day; self.key = key; self.requests = requests; self.costUSD = costUSD
    }
}

/// `GET /v1/llm/budgets`: one budget of an `llm-policy.v1` config, for one key it covers, and how
/// much of it is spent (today's and this month's spend, as the gateways enforce it).
public struct LLMBudgetStatus: Codable, Sendable, Equatable {
    public var config: String
    /// As the config says it: `identity:*`, `team:support`, `project:apollo`, `user:*`.
    public var budget: String
    /// The key spent against: `identity:support-agent` (equal to `budget` unless it names `*`).
    public var key: String
    public var usdPerDay: Double?
    public var spentToday: Double
    public var usdPerMonth: Double?
    public var spentThisMonth: Double
    public var requestsPerMinute: Int?
    public var tokensPerMinute: Int?
    public init(config: String, budget: String, key: String, usdPerDay: Double?, spentToday: Double, usdPerMonth: Double?, spentThisMonth: Double,
                requestsPerMinute: Int?, tokensPerMinute: Int?) {
        self.config = config; self.budget = budget; self.key = key; self.usdPerDay = usdPerDay; self.spentToday = spentToday
        self.usdPerMonth = usdPerMonth; self.spentThisMonth = spentThisMonth; self.requestsPerMinute = requestsPerMinute
        self.tokensPerMinute = tokensPerMinute
    }

    /// The larger of the day's and the month's share used, 0...∞ (1 = exhausted).
    public var used: Double {
        max(usdPerDay.map { $0 > 0 ? spentToday / $0 : 1 } ?? 0, usdPerMonth.map { $0 > 0 ? spentThisMonth / $0 : 1 } ?? 0)
    }
}
