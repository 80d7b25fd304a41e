import Foundation
import JobCore

extension JSONWriter {
    /// One event of `GET /v1/events`: what happened, when, and the job's summary. Not the
    /// job's input or result (a client that wants them asks `GET /v1/jobs/{id}`): every stream
    /// gets every event, so each is kept small.
    mutating func jobChange(_ change: RecordedChange) {
        object { members in
            members.member("type") { $0.string(change.event.rawValue) }
            members.member("at") { $0.timestamp(change.at) }
            members.member("job") { writer in
                writer.object { fields in
                    fields.member("id") { $0.string(change.jobID.description) }
                    fields.member("kind") { $0.string(change.kind) }
                    fields.member("status") { $0.string(change.status.rawValue) }
                    fields.member("attempt") { $0.integer(change.attempt) }
                    fields.member("max_attempts") { $0.integer(change.maxAttempts) }
                    switch change.event {
                    case .failed, .cancelled, .retried:
                        fields.member("error") { $0.failure(change.error) }
                    case .webhookDelivered, .webhookFailed:
                        if let webhook = change.webhook {
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
