import Crypto
import EventHTTP
import Foundation
import JobCore
import Webhooks

extension APIHandler {
    /// `POST /v1/jobs`: 202 with the queued job, or with `Prefer: wait=N` a 200 with the
    /// finished job if it finishes in time (the seed's `submit(...).result()`). With an
    /// `Idempotency-Key`, a retried request gets the job the first one created.
    func submitJob(_ request: HTTPRequest, owner: String?) throws(Problem) {
        guard !isDraining else { throw Problem.shuttingDown }
        guard request.bodyLength <= configuration.maxBodyBytes else {
            throw Problem.bodyTooLarge(limit: configuration.maxBodyBytes)
        }
        let body = request.readBody()
        let wait = PreferHeader.wait(in: request.header("Prefer"), limit: configuration.maxWaitSeconds)
        guard let key = try Self.idempotencyKey(request) else {
            try createJob(request, body: body, owner: owner, wait: wait, idempotency: nil)
            return
        }
        let fingerprint = SHA256.hash(data: body).hexString
        let scope = IdempotencyScope(owner: owner, key: key)
        guard !idempotencyInFlight.contains(scope) else { throw Problem.idempotencyKeyInFlight }
        // Until this request is answered, the same key gets 409: its job may not exist yet.
        idempotencyInFlight.insert(scope)
        let answered = request.onResponse
        request.onResponse = { [unowned self] status in
            answered?(status)
            idempotencyInFlight.remove(scope)
        }
        let idempotency = IdempotencyRecord(key: key, fingerprint: fingerprint,
                                            expiresAt: Date().addingTimeInterval(configuration.idempotencyKeyLifetime.seconds),
                                            webhookSecretGenerated: false)
        if let original = executor.liveJob(forIdempotencyKey: key, owner: owner) {
            try replay(request, original: original, fingerprint: fingerprint, wait: wait)
            return
        }
        // The key may name a finished job that only the store still has.
        replayStored(request, idempotency, owner: owner, wait: wait) { handler, request throws(Problem) in
            try handler.createJob(request, body: body, owner: owner, wait: wait, idempotency: idempotency)
        }
    }

    /// Answers with the job the store holds under the request's idempotency key, or, if none,
    /// goes on with `otherwise`.
    private func replayStored(_ request: HTTPRequest, _ idempotency: IdempotencyRecord, owner: String?, wait: Int?,
                              otherwise: @escaping (APIHandler, HTTPRequest) throws(Problem) -> Void) {
        let key = idempotency.key
        readStore(request, { executor throws(StoreError) in try executor.loadJob(forIdempotencyKey: key, owner: owner) }) { handler, request, original throws(Problem) in
            if let original {
                try handler.replay(request, original: original, fingerprint: idempotency.fingerprint, wait: wait)
            } else {
                try otherwise(handler, request)
            }
        }
    }

    /// Answers a retried request with the job its key created, unless the body differs.
    private func replay(_ request: HTTPRequest, original: Job, fingerprint: String, wait: Int?) throws(Problem) {
        guard original.options.idempotency?.fingerprint == fingerprint else { throw Problem.idempotencyKeyReused }
        let secret = original.options.idempotency?.webhookSecretGenerated == true
            ? original.webhook.map { WebhookSecret.text(forKey: $0.key) } : nil
        acknowledge(request, job: original, wait: wait, secret: secret, replayed: true)
    }

    private func createJob(_ request: HTTPRequest, body: [UInt8], owner: String?, wait: Int?, idempotency: IdempotencyRecord?) throws(Problem) {
        let submission = try readSubmission(try Self.parseJSON(body), at: "", owner: owner, idempotency: idempotency)
        // Refuse before creating anything, so a 503 never hides an accepted job.
        if let wait, wait > 0, waiters.isFull { throw Problem.tooManyWaiters(limit: waiters.limit) }
        guard !isDraining else { throw Problem.shuttingDown }

        let secret = submission.generatedSecret
        // Another node may store a job under the same key at the same moment (the store's
        // unique index lets one win): this request then answers with that job, as a replay.
        let keyTaken = idempotency.map { record in
            { (handler: APIHandler, request: HTTPRequest) in
                handler.replayStored(request, record, owner: owner, wait: wait) { _, _ throws(Problem) in throw Problem.idempotencyKeyInFlight }
            }
        }
        let accepted = try submit([submission.prepared], request: request, keyTaken: keyTaken) { handler, request, jobs in
            handler.acknowledge(request, job: jobs[0], wait: wait, secret: secret, replayed: false)
        }
        if let accepted { acknowledge(request, job: accepted[0], wait: wait, secret: secret, replayed: false) }
    }

    /// `POST /v1/jobs/batch`: `{"jobs": [spec, ...]}`, up to 1000. Every spec is checked before
    /// any job is made; one bad spec refuses the whole batch with a problem that lists each bad
    /// index. Otherwise 202 with the jobs, in the order given, all stored in one transaction.
    func submitBatch(_ request: HTTPRequest, owner: String?) throws(Problem) {
        guard !isDraining else { throw Problem.shuttingDown }
        guard request.bodyLength <= configuration.maxBodyBytes else {
            throw Problem.bodyTooLarge(limit: configuration.maxBodyBytes)
        }
        let document = try Self.parseJSON(request.readBody())
        guard let members = document.objectValue, case .array(let specs)? = members["jobs"] else {
            throw Problem.invalidField(pointer: "/jobs", "The body must be {\"jobs\": [job, ...]}: an array of 1 to \(Self.maxBatch) jobs, each as POST /v1/jobs takes.")
        }
        if let unknown = members.firstUnknownMember({ $0 == "jobs" }) {
            throw Problem.invalidField(pointer: "/\(unknown)", "Unknown field '\(unknown.prefix(80))'. A batch is {\"jobs\": [...]}.")
        }
        guard (1...Self.maxBatch).contains(specs.count) else {
            throw Problem.invalidField(pointer: "/jobs", "'jobs' must hold 1 to \(Self.maxBatch) jobs; it holds \(specs.count).")
        }
        var submissions: [Submission] = []
        var errors: [Problem.FieldError] = []
        for (index, spec) in specs.enumerated() {
            do throws(Problem) {
                submissions.append(try readSubmission(spec, at: "/jobs/\(index)", owner: owner))
            } catch {
                errors += (error.errors ?? [Problem.FieldError(pointer: "/jobs/\(index)", detail: error.detail)]).map {
                    var field = $0
                    field.index = index
                    return field
                }
            }
        }
        guard errors.isEmpty else {
            let indexes = errors.map { String($0.index ?? 0) }
            throw Problem("invalid-batch", title: "Invalid jobs in batch", status: 422,
                          detail: "\(errors.count) of \(specs.count) jobs are invalid (indexes \(indexes.joined(separator: ", "))); no job was created. Fix them and send the batch again.",
                          errors: errors)
        }
        let secrets = submissions.map(\.generatedSecret)
        let accepted = try submit(submissions.map(\.prepared), request: request) { handler, request, jobs in
            handler.acknowledgeBatch(request, jobs: jobs, secrets: secrets)
        }
        if let accepted { acknowledgeBatch(request, jobs: accepted, secrets: secrets) }
    }

    static let maxBatch = 1000

    /// Submits prepared jobs. With a durable store, returns nil and calls `acknowledge` back on
    /// this loop once they are stored (the store's writer thread hands the reply back here).
    /// `keyTaken`, if given, answers a submission whose idempotency key another request took.
    private func submit(_ prepared: [PreparedJob], request: HTTPRequest, keyTaken: ((APIHandler, HTTPRequest) -> Void)? = nil,
                        acknowledge: @escaping (APIHandler, HTTPRequest, [Job]) -> Void) throws(Problem) -> [Job]? {
        let pending = LoopBound((handler: self, request: request, acknowledge: acknowledge, keyTaken: keyTaken), on: loop)
        let loop = self.loop
        do throws(SubmitError) {
            return try executor.submit(prepared) { result in
                loop.execute {
                    let (handler, request, acknowledge, keyTaken) = pending.value
                    switch result {
                    case .success(let jobs): acknowledge(handler, request, jobs)
                    case .failure(.idempotencyKeyTaken) where keyTaken != nil: keyTaken?(handler, request)
                    case .failure(let error): handler.respond(request, problem: Self.problem(for: error))
                    }
                }
            }
        } catch {
            throw Self.problem(for: error)
        }
    }

    /// Answers a submission whose job is durable: 202 now, or with `Prefer: wait` once it
    /// finishes (200) or the wait runs out (202). A replayed idempotent request is answered
    /// the same way, marked `Idempotent-Replayed: true`.
    private func acknowledge(_ request: HTTPRequest, job: Job, wait: Int?, secret: String?, replayed: Bool) {
        var headers = [("Location", "/v1/jobs/\(job.id)")]
        if replayed { headers.append(("Idempotent-Replayed", "true")) }
        // A secret the server generated is shown in this reply only (and in replays of it).
        guard let wait, wait > 0, !isDraining else {
            respond(request, status: 202, headers: headers) { $0.job(job.snapshot(), revealingSecret: secret) }
            return
        }
        let applied = ("Preference-Applied", "wait=\(wait)")
        let snapshot = job.snapshot()
        if snapshot.status.isFinished {
            respond(request, status: 200, headers: headers + [applied]) { $0.job(snapshot, revealingSecret: secret) }
        } else if waiters.isFull {
            respond(request, status: 202, headers: headers + [("Retry-After", "1")]) { $0.job(snapshot, revealingSecret: secret) }
        } else {
            waiters.park(request, on: job, timeout: .seconds(wait)) { [unowned self] request, snapshot, finished in
                let (status, extra) = finished ? (200, [applied]) : (202, [("Retry-After", "1")])
                respond(request, status: status, headers: headers + extra) { $0.job(snapshot, revealingSecret: secret) }
            }
        }
    }

    private func acknowledgeBatch(_ request: HTTPRequest, jobs: [Job], secrets: [String?]) {
        respond(request, status: 202) { writer in
            writer.object { members in
                members.member("jobs") {
                    $0.array(Array(zip(jobs, secrets))) { writer, item in writer.job(item.0.snapshot(), revealingSecret: item.1) }
                }
            }
        }
    }

    private static func parseJSON(_ body: [UInt8]) throws(Problem) -> JSONValue {
        do throws(JSONParser.Failure) {
            return try JSONParser.parse(body)
        } catch {
            if let path = error.duplicateMemberPath {
                let pointer = "/" + path.map { $0.replacingOccurrences(of: "~", with: "~0").replacingOccurrences(of: "/", with: "~1") }
                    .joined(separator: "/")
                throw Problem.invalidField(pointer: pointer, "The member '\(pointer)' appears more than once in its object. Send each member once (RFC 7493).")
            }
            throw Problem.malformedJSON(error.description)
        }
    }

    /// The `Idempotency-Key` header, if sent: 1 to 255 visible ASCII characters.
    private static func idempotencyKey(_ request: HTTPRequest) throws(Problem) -> String? {
        guard let key = request.header("Idempotency-Key") else { return nil }
        // The draft makes the key a Structured Field string: accept it quoted or bare.
        var text = Substring(key)
        if text.count >= 2, text.first == "\"", text.last == "\"" { text = text.dropFirst().dropLast() }
        guard (1...255).contains(text.utf8.count), text.utf8.allSatisfy({ (0x21...0x7e).contains($0) && $0 != UInt8(ascii: "\"") }) else {
            throw Problem("invalid-header", title: "Invalid header", status: 400,
                          detail: "'Idempotency-Key' must be 1 to 255 visible ASCII characters, such as a UUID.",
                          errors: [Problem.FieldError(header: "Idempotency-Key", detail: "1 to 255 visible ASCII characters")])
        }
        return String(text)
    }
}

/// An idempotency key as one client sees it: keys of different tenants never meet.
struct IdempotencyScope: Hashable {
    var owner: String?
    var key: String
}
