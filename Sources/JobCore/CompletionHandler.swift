/// What happens when a job with a webhook finishes: the webhook deliverer's way in.
///
/// The event is made first, so that it can be stored in the same transaction as the job's final
/// state (a crash between the two cannot lose it); delivery starts once both are durable.
public protocol CompletionHandler: Sendable {
    /// Makes the job's completion event. Called once, on the thread that finished the job.
    func makeEvent(for job: Job, final: JobSnapshot) -> WebhookEventRecord
    /// The event and the job's final state are durable: deliver it.
    func eventCommitted(_ event: WebhookEventRecord, job: Job)
    /// Retention removed these jobs: forget whatever is kept for them, so that memory does not
    /// grow with history. Their events are no longer pending (retention spares those).
    func jobsPurged(_ ids: Set<JobID>)
}
