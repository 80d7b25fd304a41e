import Foundation
import JobCore

/// A job as the API shows it, in snake_case JSON.
struct JobResource: Encodable {
    var id: String
    var kind: String
    var status: String
    var input: JSONValue
    var result: JSONValue?
    var error: JobFailure?
    var createdAt: String
    var startedAt: String?
    var finishedAt: String?
    /// Present (true) only while a cancel waits for a running job to stop.
    var cancelRequested: Bool?

    init(_ snapshot: JobSnapshot) {
        id = snapshot.id.description
        kind = snapshot.kind
        status = snapshot.status.rawValue
        input = snapshot.input
        result = snapshot.result
        error = snapshot.error
        createdAt = RFC3339.string(from: snapshot.createdAt)
        startedAt = snapshot.startedAt.map(RFC3339.string(from:))
        finishedAt = snapshot.finishedAt.map(RFC3339.string(from:))
        cancelRequested = snapshot.cancelRequested ? true : nil
    }

    private enum CodingKeys: String, CodingKey {
        case id, kind, status, input, result, error
        case createdAt = "created_at", startedAt = "started_at", finishedAt = "finished_at"
        case cancelRequested = "cancel_requested"
    }

    // Absent values are written as explicit nulls, so every job has the same set of fields.
    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(kind, forKey: .kind)
        try container.encode(status, forKey: .status)
        try container.encode(input, forKey: .input)
        try container.encode(result, forKey: .result)
        try container.encode(error, forKey: .error)
        try container.encode(createdAt, forKey: .createdAt)
        try container.encode(startedAt, forKey: .startedAt)
        try container.encode(finishedAt, forKey: .finishedAt)
        try container.encodeIfPresent(cancelRequested, forKey: .cancelRequested)
    }
}

/// A page of `GET /v1/jobs`.
struct JobListResource: Encodable {
    var jobs: [JobResource]
    var nextCursor: String?

    private enum CodingKeys: String, CodingKey { case jobs, nextCursor = "next_cursor" }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(jobs, forKey: .jobs)
        try container.encode(nextCursor, forKey: .nextCursor)
    }
}
