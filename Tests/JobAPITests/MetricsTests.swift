import Foundation
import Testing

@Suite("Metrics")
struct MetricsTests {
    /// One sample line of the Prometheus text format: `name{label="value",...} number`.
    private struct Sample {
        var name: String
        var labels: [String: String]
        var value: Double
    }

    /// A strict reader of the text exposition format (0.0.4): every line is a comment, or a sample
    /// whose family was declared with `# TYPE` before it. Throws on anything else.
    private func parse(_ text: String) throws -> [Sample] {
        var families: [String: String] = [:]
        var samples: [Sample] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            if line.hasPrefix("# TYPE ") {
                let parts = line.split(separator: " ")
                try #require(parts.count == 4 && ["counter", "gauge", "histogram", "summary", "untyped"].contains(parts[3]), "bad TYPE: \(line)")
                families[String(parts[2])] = String(parts[3])
                continue
            }
            if line.hasPrefix("#") { continue }
            // Label values are quoted and may hold any character but an unescaped quote.
            let match = try #require(
                line.wholeMatch(of: /([a-zA-Z_:][a-zA-Z0-9_:]*)(\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*)\})? ([-+0-9.eEInfNa]+)/),
                "bad sample: \(line)")
            let name = String(match.1)
            var labels: [String: String] = [:]
            if let body = match.3 {
                for label in body.matches(of: /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/) {
                    labels[String(label.1)] = String(label.2)
                }
            }
            let family = name.replacing(/_(bucket|sum|count)$/, with: "")
            try #require(families[name] != nil || families[family] != nil, "sample without a TYPE: \(name)")
            samples.append(Sample(name: name, labels: labels, value: try #require(Double(String(match.4)))))
        }
        return samples
    }

    @Test("GET /metrics reports jobs, queue, workers, HTTP requests and their latency in the Prometheus format")
    func metrics() async throws {
        let server = try TestServer { $0.executor.workers = 3 }
        defer { server.stop() }
        for _ in 0..<3 { _ = try await server.client.submitWriteCode(headers: ["Prefer": "wait=10"]) }
        _ = try await server.client.get("/v1/jobs/00000000-0000-4000-8000-000000000000")
        let response = try await server.client.get("/metrics")
        #expect(response.status == 200)
        #expect(response.header("Content-Type")?.hasPrefix("text/plain; version=0.0.4") == true)
        let samples = try parse(response.text)
        func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
            samples.first { sample in sample.name == name && labels.allSatisfy { key, value in sample.labels[key] == value } }?.value
        }
        #expect(value("jobpool_jobs_submitted_total", ["kind": "write_code"]) == 3)
        #expect(value("jobpool_jobs_started_total", ["kind": "write_code"]) == 3)
        #expect(value("jobpool_jobs_finished_total", ["kind": "write_code", "status": "succeeded"]) == 3)
        #expect(value("jobpool_job_run_seconds_count", ["kind": "write_code"]) == 3)
        #expect(value("jobpool_job_queue_wait_seconds_count", ["kind": "write_code"]) == 3)
        #expect(samples.contains { $0.name == "jobpool_job_run_seconds_bucket" && $0.labels["le"] == "+Inf" })
        #expect(value("jobpool_queue_depth") == 0)
        #expect(value("jobpool_workers_busy") == 0)
        #expect(value("jobpool_workers") == 3)
        #expect(value("jobpool_requests_waiting") == 0)
        #expect(value("jobpool_http_requests_total", ["route": "/v1/jobs", "method": "POST", "status": "200"]) == 3)
        #expect(value("jobpool_http_requests_total", ["route": "/v1/jobs/{id}", "method": "GET", "status": "404"]) == 1)
        #expect(value("jobpool_http_request_duration_seconds_count", ["route": "/v1/jobs"]) == 3)
    }
}
