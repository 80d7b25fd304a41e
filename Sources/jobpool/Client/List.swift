import ArgumentParser

/// `jobpool list`: `GET /v1/jobs`, newest first; `--all` follows `next_cursor` to the end.
struct List: ClientCommand {
    static let configuration = CommandConfiguration(
        abstract: "List jobs, newest first.",
        discussion: """
            With --json (or when standard output is not a terminal) a page is printed as the API \
            returns it; with --all, each job on its own line. Exits 0 when the request succeeded.

            """ + ExitStatus.help)

    @Option(help: "Only jobs in this state: scheduled, queued, running, succeeded, failed or cancelled.")
    var status: String?

    @Option(help: "Only jobs of this kind.")
    var kind: String?

    @Option(help: "Jobs per page, 1 to 500. (default: 50)")
    var limit: Int?

    @Flag(help: "Every job: follow the pages to the last.")
    var all = false

    @Flag(name: .shortAndLong, help: "Print only the jobs' IDs, one a line.")
    var quiet = false

    @OptionGroup var connection: ClientOptions

    func execute(_ client: JobpoolClient, _ output: Output) throws -> ExitStatus {
        let filters = [("status", status), ("kind", kind), ("limit", limit.map(String.init))]
            .compactMap { name, value in value.map { (name, $0) } }
        var cursor: String?
        var cursorsSeen: Set<String> = []
        var jobs: [[String: Any]] = []
        repeat {
            let response = try client.send("GET", "/v1/jobs", query: filters + (cursor.map { [("cursor", $0)] } ?? []))
            guard let page = response.object, let pageJobs = page["jobs"] as? [[String: Any]],
                  let ranges = JSONMembers.elements(of: "jobs", in: response.body), ranges.count == pageJobs.count else {
                throw ClientError(status: .unavailable, message: "the answer to GET /v1/jobs is not a page of jobs.")
            }
            cursor = page["next_cursor"] as? String
            if quiet {
                pageJobs.forEach { output.line($0["id"] as? String ?? "") }
            } else if output.json {
                // One page as the API sent it; with --all, one job a line.
                if all { ranges.forEach { output.document(response.body[$0]) } } else { output.document(response.body) }
            } else {
                jobs += pageJobs
            }
            // A cursor that comes back would loop for ever.
            if let next = cursor, !cursorsSeen.insert(next).inserted {
                throw ClientError(status: .unavailable, message: "the server returned the same next_cursor twice; stopped.")
            }
        } while all && cursor != nil
        if !quiet, !output.json {
            output.line(jobs.isEmpty ? "No jobs." : JobText.table(jobs))
            if cursor != nil { Output.error("more jobs follow; --all lists them all.") }
        }
        return .success
    }
}
