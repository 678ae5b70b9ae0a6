// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "Portless",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "portless-controller", targets: ["Controller"]),
        .executable(name: "portless-router", targets: ["RouterCommand"]),
        // Test-only: a router that tampers with circuits as a compromised one would (IntegrationTests/HostileRouterTests).
        .executable(name: "portless-test-hostile-router", targets: ["HostileRouter"]),
        .executable(name: "portless-tunnel", targets: ["Tunneler"]),
        .executable(name: "portless", targets: ["CLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
    ],
    targets: [
        .systemLibrary(name: "CLibUV", pkgConfig: "libuv", providers: [.apt(["libuv1-dev"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        // posix_spawn with a process group and closefrom, SO_PEERCRED: glibc extensions Swift cannot see.
        .target(name: "CPortlessSystem"),
        .target(
            name: "Shared",
            dependencies: [
                "CLibUV", "COpenSSL", "CPortlessSystem",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        .executableTarget(
            name: "Controller",
            dependencies: [
                "Shared",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        .target(name: "EdgeRouter", dependencies: ["Shared", .product(name: "Logging", package: "swift-log"), .product(name: "Prometheus", package: "swift-prometheus")]),
        .executableTarget(
            name: "RouterCommand",
            dependencies: ["EdgeRouter", "Shared", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .executableTarget(name: "HostileRouter", dependencies: ["EdgeRouter", "Shared"], path: "Tests/HostileRouter"),
        .target(
            name: "GatewayKit",
            dependencies: [
                "Shared",
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "MCPGateway",
            dependencies: [
                "Shared", "GatewayKit",
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "LLMGateway",
            dependencies: [
                "Shared", "GatewayKit",
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "Tunneler",
            dependencies: ["Shared", "GatewayKit", "MCPGateway", "LLMGateway", .product(name: "Crypto", package: "swift-crypto"),
                           .product(name: "Prometheus", package: "swift-prometheus"),
                           .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .executableTarget(
            name: "CLI",
            dependencies: [
                "Shared",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        .testTarget(name: "SharedTests", dependencies: ["Shared", .product(name: "Yams", package: "Yams")]),
        .testTarget(name: "ControllerTests", dependencies: ["Controller", "Shared"]),
        .testTarget(name: "LLMGatewayTests", dependencies: ["LLMGateway", "GatewayKit", "Shared", .product(name: "_CryptoExtras", package: "swift-crypto"),
                                                            .product(name: "Crypto", package: "swift-crypto"), .product(name: "X509", package: "swift-certificates"),
                                                            .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                                                            .product(name: "NIOHTTP1", package: "swift-nio"), .product(name: "NIOSSL", package: "swift-nio-ssl"),
                                                            .product(name: "NIOConcurrencyHelpers", package: "swift-nio")]),
        .testTarget(name: "MCPGatewayTests", dependencies: ["MCPGateway", "GatewayKit", "Shared"]),
        .testTarget(name: "GatewayKitTests", dependencies: ["GatewayKit", "Shared", .product(name: "Crypto", package: "swift-crypto"),
                                                            .product(name: "_CryptoExtras", package: "swift-crypto"),
                                                            .product(name: "NIOEmbedded", package: "swift-nio"),
                                                            .product(name: "NIOPosix", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"),
                                                            .product(name: "HTTPTypes", package: "swift-http-types")]),
        .testTarget(name: "EdgeRouterTests", dependencies: ["EdgeRouter", "Shared"]),
        .testTarget(name: "IntegrationTests", dependencies: ["Shared"], path: "IntegrationTests"),
    ],
    swiftLanguageModes: [.v6]
)
