import EventHTTP
import JobCore

extension APIHandler {
    /// Runs `read` on one of the store's reader threads, never on the loop, then continues on
    /// the loop with its result. A read that fails is a 503 the client may retry.
    func readStore<Value: Sendable>(_ request: HTTPRequest, _ read: @escaping @Sendable (JobExecutor) throws(StoreError) -> Value,
                                    then: @escaping (APIHandler, HTTPRequest, Value) throws(Problem) -> Void) {
        let pending = LoopBound((handler: self, request: request, then: then), on: loop)
        let loop = self.loop
        let executor = self.executor
        executor.reader.run {
            let result = Result { () throws(StoreError) -> Value in try read(executor) }
            loop.execute {
                let (handler, request, then) = pending.value
                do throws(Problem) {
                    switch result {
                    case .success(let value): try then(handler, request, value)
                    case .failure(let error): throw Problem.storeReadFailed(error.message)
                    }
                } catch {
                    handler.respond(request, problem: error)
                }
            }
        }
    }

    /// Continues with the job named `id` if the caller may see it: at once when memory holds
    /// it (live, or recently finished), otherwise once the store has answered. Another
    /// tenant's job is answered exactly like one that does not exist: 404.
    func withJob(_ request: HTTPRequest, id: String, owner: String?,
                 _ then: @escaping (APIHandler, HTTPRequest, Job) throws(Problem) -> Void) throws(Problem) {
        guard let jobID = JobID(id) else { throw Problem.jobNotFound(String(id.prefix(80))) }
        if let job = executor.cachedJob(withID: jobID) {
            guard owner == nil || job.owner == owner else { throw Problem.jobNotFound(String(id.prefix(80))) }
            try then(self, request, job)
            return
        }
        readStore(request, { executor throws(StoreError) in try executor.loadJob(withID: jobID) }) { handler, request, job throws(Problem) in
            guard let job, owner == nil || job.owner == owner else { throw Problem.jobNotFound(String(id.prefix(80))) }
            try then(handler, request, job)
        }
    }
}
