import ArgumentParser
import Foundation
import JobAPI
import JobpoolApp
import Logging
import OutboundHTTP
import Webhooks

/// `jobpool serve`: runs the service until SIGINT or SIGTERM, then drains and exits 0.
///
/// It only reads flags and environment into one ``ServerConfiguration``; every default and
/// every setting that follows from another lives there, so the tests get the same service.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the job service.",
        discussion: "Every option can also be set through the environment variable shown with it; a flag wins over the variable."
    )

    @Option(help: "Address to listen on. (env: JOBPOOL_HOST, default: 127.0.0.1)")
    var host: String?

    @Option(help: "TCP port; 0 picks a free one. (env: JOBPOOL_PORT, default: 8080)")
    var port: Int?

    @Option(help: "Worker threads: the most jobs that run at once. 0, with --store postgres://…, makes a node that serves the API and runs no jobs (other nodes run them). (env: JOBPOOL_WORKERS, default: 8)")
    var workers: Int?

    @Option(help: "Jobs that may wait for a worker before submissions get 429. (env: JOBPOOL_MAX_QUEUED, default: 100000)")
    var maxQueued: Int?

    @Option(help: "Jobs one API key may have waiting for a worker, so that one tenant cannot fill the queue for all. (env: JOBPOOL_MAX_QUEUED_PER_TENANT, default: half of --max-queued)")
    var maxQueuedPerTenant: Int?

    @Option(help: "With --store memory: the most jobs kept, live and finished. Past it the oldest finished jobs are evicted; when every job kept is live, submissions get 503. (env: JOBPOOL_MEMORY_MAX_JOBS, default: 1000000)")
    var memoryMaxJobs: Int?

    @Option(help: "Megabytes of recently finished or read jobs kept in memory in front of the store. (env: JOBPOOL_CACHE_MB, default: 64)")
    var cacheMb: Int?

    @Option(help: "Open HTTP connections at most. (env: JOBPOOL_MAX_CONNECTIONS, default: 10000)")
    var maxConnections: Int?

    @Option(help: "Seconds a connection has, from its accept or the end of its last reply, to send its next whole request; trickling bytes do not extend it. (env: JOBPOOL_REQUEST_TIMEOUT, default: 15)")
    var requestTimeout: Int?

    @Option(help: "Requests that may wait for a job at once (Prefer: wait, ?wait=), and event streams at once; at most 45% of --max-connections. (env: JOBPOOL_MAX_WAITERS, default: 4000)")
    var maxWaiters: Int?

    @Option(help: "Largest request body in bytes. (env: JOBPOOL_MAX_BODY_BYTES, default: 1048576)")
    var maxBodyBytes: Int?

    @Option(help: "Seconds running jobs get to finish on shutdown. (env: JOBPOOL_SHUTDOWN_GRACE, default: 25)")
    var shutdownGrace: Int?

    @Option(help: "Also serve the seed's upper-casing line echo on this TCP port. (env: JOBPOOL_ECHO_PORT, default: off)")
    var echoPort: Int?

    @Option(name: .customLong("allow-cidr"),
            help: "Let fetches reach this address range (repeatable), e.g. 10.1.0.0/16. (env: JOBPOOL_ALLOW_CIDRS, comma-separated)")
    var allowCIDRs: [String] = []

    @Flag(help: "Let fetches reach every private, loopback and link-local address. (env: JOBPOOL_ALLOW_PRIVATE_NETWORKS=true)")
    var allowPrivateNetworks = false

    @Option(help: "Send outbound requests through this proxy, e.g. http://proxy:3128. Proxy environment variables are otherwise ignored. (env: JOBPOOL_EGRESS_PROXY)")
    var egressProxy: String?

    @Option(help: "Where jobs are kept: sqlite:PATH (durable), postgres://USER:PASSWORD@HOST/DB (durable, a PostgreSQL database), or memory (lost on restart). (env: JOBPOOL_STORE, default: sqlite:./data/jobpool.sqlite)")
    var store: String?

    @Option(help: "How long finished jobs are kept, e.g. 7d, 12h, 30m. (env: JOBPOOL_RETENTION, default: 7d)")
    var retention: String?

    @Option(help: "How long an Idempotency-Key is remembered, e.g. 24h. (env: JOBPOOL_IDEMPOTENCY_TTL, default: 24h)")
    var idempotencyTtl: String?

    @Option(help: "Seconds a queued job waits to gain one priority level, so low priorities never starve. (env: JOBPOOL_PRIORITY_AGING_SECONDS, default: 10)")
    var priorityAgingSeconds: Int?

    @Option(help: "With a PostgreSQL store: seconds between two renewals of this node's lease. (env: JOBPOOL_HEARTBEAT_SECONDS, default: 5)")
    var heartbeatSeconds: Int?

    @Option(help: "With a PostgreSQL store: seconds a renewal holds this node's lease; at least 3 heartbeats. Past it, the other nodes take back this node's running jobs. (env: JOBPOOL_LEASE_SECONDS, default: 30)")
    var leaseSeconds: Int?

    @Option(help: "Secret (whsec_...) for webhooks registered without one; otherwise each gets a random secret, returned once. (env: JOBPOOL_WEBHOOK_SECRET)")
    var webhookSecret: String?

    @Option(help: "Threads that deliver webhooks. (env: JOBPOOL_WEBHOOK_WORKERS, default: 4)")
    var webhookWorkers: Int?

    @Option(help: "Seconds one webhook attempt may take. (env: JOBPOOL_WEBHOOK_TIMEOUT, default: 15)")
    var webhookTimeout: Int?

    @Option(help: "Webhook attempts running against one host at once. (env: JOBPOOL_WEBHOOK_MAX_PER_HOST, default: 4)")
    var webhookMaxPerHost: Int?

    @Option(help: "Waits between webhook attempts, e.g. 5s,5m,30m,2h,5h,10h,10h (the default). (env: JOBPOOL_WEBHOOK_RETRY_SCHEDULE)")
    var webhookRetrySchedule: String?

    @Option(help: "Webhook events that may wait in memory for delivery. (env: JOBPOOL_WEBHOOK_BACKLOG, default: 10000)")
    var webhookBacklog: Int?

    @Option(name: .customLong("api-key"),
            help: "Require 'Authorization: Bearer KEY' on /v1 (repeatable; each key sees only its own jobs). (env: JOBPOOL_API_KEYS, comma-separated)")
    var apiKeys: [String] = []

    @Option(help: "A file of API keys, one per line ('#' starts a comment). (env: JOBPOOL_API_KEYS_FILE)")
    var apiKeysFile: String?

    @Option(help: "Require this key (as a Bearer token) for /metrics. With API keys and no metrics key, /metrics is closed. (env: JOBPOOL_METRICS_API_KEY)")
    var metricsApiKey: String?

    @Flag(help: "Leave /metrics open without a key although API keys are set; it shows every tenant's job counts. (env: JOBPOOL_PUBLIC_METRICS=true)")
    var publicMetrics = false

    @Option(help: "text, or json for one JSON object per line. (env: JOBPOOL_LOG_FORMAT, default: text)")
    var logFormat: String?

    @Option(help: "trace, debug, info, notice, warning, error or critical. (env: JOBPOOL_LOG_LEVEL, default: info)")
    var logLevel: Logger.Level?

    /// Everything `run` needs, read from flags and environment and checked. Called by
    /// `validate()` too, so that ArgumentParser reports a bad value with `jobpool serve`'s usage.
    private func makeSettings() throws -> (configuration: ServerConfiguration, level: Logger.Level, format: LogFormat) {
        let environment = Environment()
        var configuration = ServerConfiguration()
        configuration.host = try environment.value(host, "JOBPOOL_HOST", default: configuration.host)
        configuration.port = try environment.value(port, "JOBPOOL_PORT", default: configuration.port)
        configuration.executor.workers = try environment.value(workers, "JOBPOOL_WORKERS", default: configuration.executor.workers)
        configuration.executor.maxQueued = try environment.value(maxQueued, "JOBPOOL_MAX_QUEUED", default: configuration.executor.maxQueued)
        configuration.executor.maxQueuedPerOwner = try environment.optional(maxQueuedPerTenant, "JOBPOOL_MAX_QUEUED_PER_TENANT")
        configuration.http.maxConnections = try environment.value(maxConnections, "JOBPOOL_MAX_CONNECTIONS", default: configuration.http.maxConnections)
        configuration.memoryMaxJobs = try environment.value(memoryMaxJobs, "JOBPOOL_MEMORY_MAX_JOBS", default: configuration.memoryMaxJobs)
        let cacheMegabytes = try environment.value(cacheMb, "JOBPOOL_CACHE_MB", default: configuration.executor.finishedCacheBytes >> 20)
        guard (0...65_536).contains(cacheMegabytes) else { throw ValidationError("--cache-mb must be 0 to 65536.") }
        configuration.executor.finishedCacheBytes = cacheMegabytes << 20
        let requestSeconds = try environment.value(requestTimeout, "JOBPOOL_REQUEST_TIMEOUT",
                                                   default: Int(configuration.http.requestTimeout.components.seconds))
        guard (1...3600).contains(requestSeconds) else { throw ValidationError("--request-timeout must be 1 to 3600 seconds.") }
        configuration.http.requestTimeout = .seconds(requestSeconds)
        configuration.api.maxWaiters = try environment.value(maxWaiters, "JOBPOOL_MAX_WAITERS", default: configuration.api.maxWaiters)
        configuration.api.maxBodyBytes = try environment.value(maxBodyBytes, "JOBPOOL_MAX_BODY_BYTES", default: configuration.api.maxBodyBytes)
        let grace = try environment.value(shutdownGrace, "JOBPOOL_SHUTDOWN_GRACE", default: Int(configuration.shutdownGrace.components.seconds))
        guard (0...3600).contains(grace) else { throw ValidationError("--shutdown-grace must be 0 to 3600 seconds.") }
        configuration.shutdownGrace = .seconds(grace)
        configuration.echoPort = try environment.optional(echoPort, "JOBPOOL_ECHO_PORT")
        let level = try environment.value(logLevel, "JOBPOOL_LOG_LEVEL", default: .info)
        configuration.outbound.policy = try addressPolicy(environment)
        try configureWebhooks(&configuration, environment)
        configuration.apiKeys = try apiKeyList(environment)
        configuration.metricsAPIKey = try environment.optional(metricsApiKey, "JOBPOOL_METRICS_API_KEY")
        configuration.publicMetrics = try publicMetrics || environment.value(nil as Bool?, "JOBPOOL_PUBLIC_METRICS", default: false)
        if let text = try environment.optional(store, "JOBPOOL_STORE") {
            guard let parsed = ServerConfiguration.Store(text) else {
                throw ValidationError("--store: '\(ServerConfiguration.Store.redacted(text))' is not 'memory', 'sqlite:PATH' or a postgres:// URI.")
            }
            configuration.store = parsed
        }
        if let text = try environment.optional(retention, "JOBPOOL_RETENTION") {
            configuration.retention = try Self.duration(text, flag: "--retention", in: .seconds(1) ... .seconds(3650 * 86_400))
        }
        if let text = try environment.optional(idempotencyTtl, "JOBPOOL_IDEMPOTENCY_TTL") {
            configuration.api.idempotencyKeyLifetime = try Self.duration(text, flag: "--idempotency-ttl",
                                                                        in: .seconds(1) ... .seconds(365 * 86_400))
        }
        let aging = try environment.value(priorityAgingSeconds, "JOBPOOL_PRIORITY_AGING_SECONDS",
                                          default: Int(configuration.priorityAgingStep.components.seconds))
        guard (1...86_400).contains(aging) else { throw ValidationError("--priority-aging-seconds must be 1 to 86400.") }
        configuration.priorityAgingStep = .seconds(aging)
        configuration.outbound.egressProxy = try environment.optional(egressProxy, "JOBPOOL_EGRESS_PROXY")
        let heartbeat = try environment.value(heartbeatSeconds, "JOBPOOL_HEARTBEAT_SECONDS",
                                              default: Int(configuration.nodeLease.heartbeat.components.seconds))
        let lease = try environment.value(leaseSeconds, "JOBPOOL_LEASE_SECONDS", default: Int(configuration.nodeLease.lease.components.seconds))
        guard (1...3600).contains(heartbeat) else { throw ValidationError("--heartbeat-seconds must be 1 to 3600.") }
        guard (3...86_400).contains(lease) else { throw ValidationError("--lease-seconds must be 3 to 86400.") }
        configuration.nodeLease.heartbeat = .seconds(heartbeat)
        configuration.nodeLease.lease = .seconds(lease)
        if let problem = configuration.nodeLease.problem { throw ValidationError(problem) }
        try validate(configuration)
        let formatName = try environment.value(logFormat, "JOBPOOL_LOG_FORMAT", default: "text")
        guard let format = LogFormat(rawValue: formatName) else { throw ValidationError("--log-format must be text or json.") }
        return (configuration, level, format)
    }

    func validate() throws {
        _ = try makeSettings()
    }

    func run() async throws {
        let (settings, level, format) = try makeSettings()
        var configuration = settings
        configuration.accessLogSink = { entries in format.writeAccessLines(entries, label: "jobpool") }
        LoggingSystem.bootstrap { label in
            LineLogHandler(label: label, level: level, format: format)
        }
        // Whatever way this returns, the log lines written so far reach standard error.
        defer { LogOutput.standardError.flushBeforeExit() }
        let logger = Logger(label: "jobpool")
        let server: JobpoolServer
        do {
            logger.info("Opening the job store", metadata: ["store": "\(configuration.store.description)"])
            server = try JobpoolServer(configuration: configuration, logger: logger)
            try server.open()
        } catch {
            logger.critical("Cannot start: \(error)")
            throw ExitCode(2)
        }
        let droppedLines = server.executor.metrics.counter("jobpool_log_lines_dropped_total", [])
        LogOutput.standardError.onDrop { droppedLines.increment(by: $0) }
        let shownHost = configuration.host.contains(":") ? "[\(configuration.host)]" : configuration.host
        if configuration.apiKeys.isEmpty, !["127.0.0.1", "::1", "localhost"].contains(configuration.host) {
            logger.warning("Listening on \(shownHost), reachable from other machines, with no API keys: anyone who can reach it can submit and read jobs. Set --api-key or JOBPOOL_API_KEYS.")
        }
        if !configuration.apiKeys.isEmpty, configuration.metricsAPIKey == nil, !configuration.publicMetrics {
            logger.notice("/metrics is closed (403): API keys are set but no metrics key. Set --metrics-api-key, or --public-metrics to open it.")
        }
        // Starts the services (the HTTP server logs "listening on"), and drains and stops them
        // on SIGTERM or SIGINT, which the service group alone handles.
        do {
            try await server.run()
        } catch {
            logger.critical("Stopped on an error: \(error)")
            throw ExitCode(1)
        }
    }

    /// Keys from --api-key (or JOBPOOL_API_KEYS) and --api-keys-file (or JOBPOOL_API_KEYS_FILE).
    private func apiKeyList(_ environment: Environment) throws -> [String] {
        var keys = apiKeys.isEmpty ? environment.list("JOBPOOL_API_KEYS") : apiKeys
        if let path = try environment.optional(apiKeysFile, "JOBPOOL_API_KEYS_FILE") {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw ValidationError("--api-keys-file: cannot read \(path).")
            }
            keys += text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { !$0.isEmpty && !$0.hasPrefix("#") }
        }
        keys = keys.filter { !$0.isEmpty }
        guard keys.allSatisfy({ $0.count >= 16 }) else {
            throw ValidationError("API keys must be at least 16 characters; use long random strings.")
        }
        return keys
    }

    private func configureWebhooks(_ configuration: inout ServerConfiguration, _ environment: Environment) throws {
        if let secret = try environment.optional(webhookSecret, "JOBPOOL_WEBHOOK_SECRET") {
            do {
                _ = try WebhookSecret.key(from: secret)
            } catch {
                throw ValidationError("--webhook-secret: \(error.message)")
            }
            configuration.webhookDefaultSecret = secret
        }
        var webhooks = configuration.webhooks
        webhooks.workers = try environment.value(webhookWorkers, "JOBPOOL_WEBHOOK_WORKERS", default: webhooks.workers)
        let timeout = try environment.value(webhookTimeout, "JOBPOOL_WEBHOOK_TIMEOUT", default: Int(webhooks.timeout.components.seconds))
        guard (1...600).contains(timeout) else { throw ValidationError("--webhook-timeout must be 1 to 600 seconds.") }
        webhooks.timeout = .seconds(timeout)
        webhooks.maxPerHost = try environment.value(webhookMaxPerHost, "JOBPOOL_WEBHOOK_MAX_PER_HOST", default: webhooks.maxPerHost)
        webhooks.maxBacklog = try environment.value(webhookBacklog, "JOBPOOL_WEBHOOK_BACKLOG", default: webhooks.maxBacklog)
        if let text = try environment.optional(webhookRetrySchedule, "JOBPOOL_WEBHOOK_RETRY_SCHEDULE") {
            guard let schedule = RetrySchedule(text) else {
                throw ValidationError("--webhook-retry-schedule: '\(text)' is not a list like 5s,5m,30m,2h (units ms, s, m, h).")
            }
            webhooks.retrySchedule = schedule
        }
        guard (1...256).contains(webhooks.workers) else { throw ValidationError("--webhook-workers must be 1 to 256.") }
        guard webhooks.maxPerHost >= 1 else { throw ValidationError("--webhook-max-per-host must be at least 1.") }
        guard webhooks.maxBacklog >= 1 else { throw ValidationError("--webhook-backlog must be at least 1.") }
        configuration.webhooks = webhooks
    }

    private func addressPolicy(_ environment: Environment) throws -> AddressPolicy {
        let texts = allowCIDRs.isEmpty ? environment.list("JOBPOOL_ALLOW_CIDRS") : allowCIDRs
        let ranges = try texts.map { text in
            guard let range = CIDR(text) else {
                throw ValidationError("'\(text)' is not an address range; use a form like 10.1.0.0/16, 127.0.0.1 or fd00::/8.")
            }
            return range
        }
        let allowAll = try allowPrivateNetworks || environment.value(nil as Bool?, "JOBPOOL_ALLOW_PRIVATE_NETWORKS", default: false)
        return AddressPolicy(allowed: ranges, allowsPrivateNetworks: allowAll)
    }

    private func validate(_ configuration: ServerConfiguration) throws {
        guard (0...65535).contains(configuration.port) else { throw ValidationError("--port must be 0 to 65535.") }
        guard HostName.isValid(configuration.host) else {
            throw ValidationError("--host: '\(configuration.host.prefix(80))' is not an IP address or a host name; use an address such as 127.0.0.1, 0.0.0.0 or ::, or a name such as localhost.")
        }
        guard (0...1024).contains(configuration.executor.workers) else { throw ValidationError("--workers must be 0 to 1024.") }
        if configuration.executor.workers == 0, !configuration.store.isShared {
            throw ValidationError("--workers 0 makes a node that serves the API but runs no jobs: that needs other nodes to run them, on one shared store (--store postgres://…). With --store \(configuration.store.kindName) nobody would run the jobs; give it at least one worker.")
        }
        guard (1...100_000_000).contains(configuration.executor.maxQueued) else { throw ValidationError("--max-queued must be 1 to 100000000.") }
        guard (1...100_000_000).contains(configuration.executor.maxQueuedPerOwner ?? 1) else {
            throw ValidationError("--max-queued-per-tenant must be 1 to 100000000.")
        }
        guard (1...1_000_000_000).contains(configuration.memoryMaxJobs) else { throw ValidationError("--memory-max-jobs must be 1 to 1000000000.") }
        guard (1...1_000_000).contains(configuration.http.maxConnections) else { throw ValidationError("--max-connections must be 1 to 1000000.") }
        guard (0...1_000_000).contains(configuration.api.maxWaiters) else { throw ValidationError("--max-waiters must be 0 to 1000000.") }
        // Waiters and event streams (each up to --max-waiters) cannot be evicted to make room
        // for a new client; together they must leave some connections that can.
        guard configuration.api.maxWaiters * 20 <= configuration.http.maxConnections * 9 else {
            throw ValidationError("--max-waiters (\(configuration.api.maxWaiters)) must be at most 45% of --max-connections (\(configuration.http.maxConnections)): waiters and event streams, each up to that many, cannot be closed to make room for new clients. Lower --max-waiters or raise --max-connections.")
        }
        guard (1024...(1 << 30)).contains(configuration.api.maxBodyBytes) else { throw ValidationError("--max-body-bytes must be 1024 to 1073741824.") }
        if let echo = configuration.echoPort, !(0...65535).contains(echo) { throw ValidationError("--echo-port must be 0 to 65535.") }
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
