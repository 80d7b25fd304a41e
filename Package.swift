// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "jobpool",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "jobpool", targets: ["jobpool"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
    ],
    targets: [
        // libevent's C API, from Debian's libevent-dev. Only EventHTTP imports it.
        .systemLibrary(
            name: "CLibevent",
            pkgConfig: "libevent",
            providers: [.apt(["libevent-dev"])]
        ),
        // The thin Swift wrapper over evhttp and bufferevents: the only target that touches
        // libevent's C pointers.
        .target(
            name: "EventHTTP",
            dependencies: ["CLibevent"]
        ),
        // libcurl's C API, from Debian's libcurl4-openssl-dev. Only OutboundHTTP imports it.
        .systemLibrary(
            name: "CCurl",
            pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]
        ),
        // The one outbound HTTP client (fetch jobs, webhooks) and its SSRF address policy: the
        // only target that touches curl's C pointers.
        .target(
            name: "OutboundHTTP",
            dependencies: ["CCurl"]
        ),
        // concurrent.futures in plain Swift: jobs, their handles, the worker pool. No HTTP.
        .target(
            name: "JobCore",
            dependencies: [
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "DequeModule", package: "swift-collections"),
            ]
        ),
        // Job kinds that reach the outside world: fetch_url, over the outbound client.
        .target(
            name: "JobKinds",
            dependencies: ["JobCore", "OutboundHTTP"]
        ),
        // The durable job store: SQLite through GRDB (WAL, synchronous=FULL, group commit).
        .target(
            name: "SQLiteStore",
            dependencies: [
                "JobCore",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // libpq's C API, from Debian's libpq-dev. Only Postgres imports it.
        .systemLibrary(
            name: "CLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"])]
        ),
        // The thin Swift wrapper over libpq: connections, parameterised queries, typed rows,
        // a blocking pool. The only target that touches libpq's C pointers.
        .target(
            name: "Postgres",
            dependencies: ["CLibPQ"]
        ),
        // The job store on PostgreSQL: the same protocol as SQLite (group commit, counts,
        // idempotency per owner), with schema migrations under an advisory lock.
        .target(
            name: "PostgresStore",
            dependencies: [
                "JobCore",
                "Postgres",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Signed, retried completion callbacks (Standard Webhooks), on their own threads.
        .target(
            name: "Webhooks",
            dependencies: [
                "JobCore",
                "OutboundHTTP",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The REST API and its front end (the event loop serving it): routes, payloads,
        // problem+json errors, parked waiters. It sees jobs through JobCore, never a store.
        .target(
            name: "JobAPI",
            dependencies: [
                "EventHTTP",
                "JobCore",
                "OutboundHTTP",
                "Webhooks",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "DequeModule", package: "swift-collections"),
            ],
            // The contract, compiled in and served at GET /openapi.yaml: the link points at the
            // one copy in openapi/, so the served spec is always the one CI validates.
            // The dashboard at /ui/ is compiled in the same way: hand-written files, no build step.
            resources: [.embedInCode("Resources/openapi.yaml")] + [
                "index.html", "app.css", "favicon.svg", "app.js", "api.js", "dom.js", "sse.js", "chart.js",
                "overview.js", "jobs.js", "job.js", "submit.js",
            ].map { .embedInCode("Resources/ui/" + $0) }
        ),
        // The composition root: one configuration value, the store, the kinds, and the
        // long-lived parts as services started in dependency order and stopped in reverse.
        .target(
            name: "JobpoolApp",
            dependencies: [
                "EventHTTP",
                "JobAPI",
                "JobCore",
                "JobKinds",
                "OutboundHTTP",
                "Postgres",
                "PostgresStore",
                "SQLiteStore",
                "Webhooks",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The executable only parses configuration and runs the app.
        .executableTarget(
            name: "jobpool",
            dependencies: [
                "JobAPI",
                "JobpoolApp",
                "OutboundHTTP",
                "Webhooks",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            // jemalloc (Debian libjemalloc-dev) replaces glibc's malloc for the whole process:
            // the event loop allocates per request and workers free across threads, and glibc's
            // arenas made malloc/free the largest user-space cost of a POST (+33% POST and +23%
            // GET throughput with jemalloc, measured with bench/compare.sh's load).
            linkerSettings: [.linkedLibrary("jemalloc")]
        ),
        // A private PostgreSQL cluster for the tests: one per test process, a database per test.
        // A library under Tests/, so that the store tests and the API tests share one cluster.
        .target(
            name: "PostgresTestSupport",
            dependencies: ["Postgres", "PostgresStore", .product(name: "Logging", package: "swift-log")],
            path: "Tests/PostgresTestSupport"
        ),
        // What the store tests share: the scenario every store must answer as the memory store
        // does, and helpers to write and wait.
        .target(name: "StoreTestSupport", dependencies: ["JobCore"], path: "Tests/StoreTestSupport"),
        .testTarget(name: "JobCoreTests", dependencies: ["JobCore"]),
        // The cluster tests (Tests/JobAPITests/Cluster) read the database with Postgres's
        // connection to check what the API does not show (attempt outcomes, node rows).
        .testTarget(name: "JobAPITests", dependencies: [
            "JobAPI", "JobpoolApp", "EventHTTP", "JobCore", "SQLiteStore", "Postgres", "PostgresTestSupport", "StoreTestSupport",
            .product(name: "Prometheus", package: "swift-prometheus"),
        ]),
        .testTarget(name: "OutboundHTTPTests", dependencies: ["OutboundHTTP"]),
        .testTarget(name: "WebhooksTests", dependencies: ["Webhooks", "JobCore"]),
        .testTarget(name: "SQLiteStoreTests", dependencies: ["SQLiteStore", "JobCore", "StoreTestSupport"]),
        .testTarget(name: "PostgresTests", dependencies: [
            "Postgres", "PostgresStore", "PostgresTestSupport", "StoreTestSupport", "JobCore", .product(name: "Logging", package: "swift-log"),
            .product(name: "InMemoryLogging", package: "swift-log"),
        ]),
    ],
    swiftLanguageModes: [.v6]
)
