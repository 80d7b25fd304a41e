import Foundation
import JobCore

extension JSONWriter {
    /// One event of `GET /v1/events`: what happened, when, and the job's summary. Not the
    /// job's input or result (a client that wants them asks `GET /v1/jobs/{id}`): every stream
    /// gets every event, so each is kept small.
    mutating func jobChange(_ change: JobChange) {
        let job = change.job
        // Read now, at most 100 ms after the change: a final state's error and webhook never
        // change again, and the attempt changes only with a later retry.
        let snapshot = job.snapshot()
        object { members in
            members.member("type") { $0.string(change.event.rawValue) }
            members.member("at") { $0.timestamp(change.at) }
            members.member("job") { writer in
                writer.object { fields in
                    fields.member("id") { $0.string(job.id.description) }
                    fields.member("kind") { $0.string(job.kind) }
                    fields.member("status") { $0.string(change.status.rawValue) }
                    fields.member("attempt") { $0.integer(snapshot.attempt) }
                    fields.member("max_attempts") { $0.integer(snapshot.maxAttempts) }
                    switch change.event {
                    case .failed, .cancelled:
                        fields.member("error") { $0.failure(snapshot.error) }
                    case .retried:
                        fields.member("error") { $0.failure(snapshot.status == .scheduled ? snapshot.lastError : nil) }
                    case .webhookDelivered, .webhookFailed:
                        if let webhook = snapshot.webhook {
                            fields.member("webhook") { writer in
                                writer.object { hook in
                                    hook.member("state") { $0.string(webhook.state.rawValue) }
                                    hook.member("attempts") { $0.integer(webhook.attempts) }
                                }
                            }
                        }
                    default:
                        break
                    }
                }
            }
        }
    }
}
