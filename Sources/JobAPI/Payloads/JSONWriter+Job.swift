import JobCore

extension JSONWriter {
    /// A job as the API shows it: the same fields, in the same order, for every job; absent
    /// values are explicit nulls.
    mutating func job(_ job: JobSnapshot) {
        object { members in
            members.member("id") { $0.string(job.id.description) }
            members.member("kind") { $0.string(job.kind) }
            members.member("status") { $0.string(job.status.rawValue) }
            members.member("input") { $0.value(job.input) }
            members.member("result") { writer in
                if let result = job.result { writer.value(result) } else { writer.null() }
            }
            members.member("error") { writer in
                guard let error = job.error else { return writer.null() }
                writer.object { fields in
                    fields.member("code") { $0.string(error.code) }
                    fields.member("message") { $0.string(error.message) }
                }
            }
            members.member("created_at") { $0.timestamp(job.createdAt) }
            members.member("started_at") { $0.optionalTimestamp(job.startedAt) }
            members.member("finished_at") { $0.optionalTimestamp(job.finishedAt) }
            if job.cancelRequested { members.member("cancel_requested") { $0.bool(true) } }
        }
    }

    /// A page of `GET /v1/jobs`.
    mutating func jobList(_ page: JobPage) {
        object { members in
            members.member("jobs") { $0.array(page.jobs) { writer, job in writer.job(job) } }
            members.member("next_cursor") { $0.optionalString(page.nextCursor.map(ListCursor.encode)) }
        }
    }

    /// An RFC 9457 problem document.
    mutating func problem(_ problem: Problem) {
        object { members in
            members.member("type") { $0.string(problem.type) }
            members.member("title") { $0.string(problem.title) }
            members.member("status") { $0.integer(problem.status) }
            members.member("detail") { $0.string(problem.detail) }
            if let instance = problem.instance { members.member("instance") { $0.string(instance) } }
            if let errors = problem.errors {
                members.member("errors") {
                    $0.array(errors) { writer, error in
                        writer.object { fields in
                            if let pointer = error.pointer { fields.member("pointer") { $0.string(pointer) } }
                            if let parameter = error.parameter { fields.member("parameter") { $0.string(parameter) } }
                            fields.member("detail") { $0.string(error.detail) }
                        }
                    }
                }
            }
        }
    }
}
