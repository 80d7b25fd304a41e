import Crypto
import Foundation

/// The dashboard's files, compiled into the binary (see `Package.swift`), by the path they are
/// served at under `/ui/`. Each carries a strong ETag made from its bytes, so a browser
/// revalidates with `If-None-Match` and gets a 304 until a new build changes the file.
struct DashboardAssets {
    struct Asset {
        let bytes: [UInt8]
        let contentType: String
        let etag: String

        init(_ bytes: [UInt8], _ contentType: String) {
            self.bytes = bytes
            self.contentType = contentType
            etag = "\"" + SHA256.hash(data: Data(bytes)).prefix(12).hexString + "\""
        }
    }

    /// Every file, by its name under `/ui/`; `""` is the page itself.
    static let files: [String: Asset] = {
        let html = "text/html; charset=utf-8"
        let script = "text/javascript; charset=utf-8"
        let index = Asset(PackageResources.index_html, html)
        return [
            "": index,
            "index.html": index,
            "app.css": Asset(PackageResources.app_css, "text/css; charset=utf-8"),
            "favicon.svg": Asset(PackageResources.favicon_svg, "image/svg+xml"),
            "app.js": Asset(PackageResources.app_js, script),
            "api.js": Asset(PackageResources.api_js, script),
            "dom.js": Asset(PackageResources.dom_js, script),
            "sse.js": Asset(PackageResources.sse_js, script),
            "chart.js": Asset(PackageResources.chart_js, script),
            "overview.js": Asset(PackageResources.overview_js, script),
            "jobs.js": Asset(PackageResources.jobs_js, script),
            "job.js": Asset(PackageResources.job_js, script),
            "submit.js": Asset(PackageResources.submit_js, script),
        ]
    }()

    /// The total size of the files, which the tests hold under the 80 KB.
    static var totalBytes: Int { files.filter { !$0.key.isEmpty }.values.reduce(0) { $0 + $1.bytes.count } }
}
