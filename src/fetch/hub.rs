//! `edgerl fetch hf:OWNER/NAME[@REVISION]`: a model repository from the Hugging Face Hub (or
//! any server speaking its HTTP API at `$HF_ENDPOINT`) into the Hub's own cache
//! ([`super::hub_cache`]), the way `huggingface_hub.snapshot_download` does it:
//!
//! 1. `GET {endpoint}/api/models/{repo}/revision/{revision}`: the commit and the file list.
//! 2. For each wanted file not yet in `snapshots/{commit}/`: `HEAD {endpoint}/{repo}/resolve/
//!    {commit}/{path}` (redirects to other hosts not followed) for its ETag (`X-Linked-Etag`
//!    before `ETag`) and size (`X-Linked-Size` before `Content-Length`); then, unless the blob
//!    is cached, `GET` the same URL (redirects followed) into `blobs/{etag}.incomplete`,
//!    resuming with `Range` after a dropped connection or an earlier run, checking the size and
//!    — for LFS files, whose ETag is their sha256 — the hash, and renaming it into place.
//!
//! The token goes to the endpoint's host only, never to the storage hosts it redirects to.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::hub_cache::{HubOptions, RepoCache, RepoRef, is_commit, safe_relative, wanted};
use crate::error::{Error, Result};

/// A fetched snapshot.
#[derive(Debug)]
pub struct Snapshot {
    /// `…/models--OWNER--NAME/snapshots/{commit}`: give it to edgerl as `--model DIR`.
    pub dir: PathBuf,
    pub commit: String,
    /// The wanted files, relative to `dir`.
    pub files: Vec<String>,
    /// How many bytes were downloaded this time (0 when all came from the cache).
    pub downloaded: u64,
    /// Set when the Hub could not be reached and the cached snapshot was used instead.
    pub warning: Option<String>,
}

/// How many times one file's download is resumed within a run after its connection drops.
const ATTEMPTS: usize = 5;
/// Tries of one request when the connection fails or the Hub answers 429/5xx, and the pause
/// before the second (longer before each later one).
const TRIES: u32 = 3;
const RETRY_PAUSE: Duration = Duration::from_millis(500);

#[derive(Deserialize)]
struct RepoInfo {
    sha: String,
    #[serde(default)]
    siblings: Vec<Sibling>,
}

#[derive(Deserialize)]
struct Sibling {
    rfilename: String,
}

/// What a `HEAD` on a file's resolve URL tells.
struct FileMeta {
    etag: String,
    size: u64,
}

/// Why a step failed: no usable answer (the network, or a Hub answering 429/5xx), after which
/// the repo-info lookup may fall back on the cache; or anything else.
enum Failure {
    Net(String),
    Other(Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure::Other(e)
    }
}

/// Fetches `r`'s wanted files (`include` globs; empty: [`super::hub_cache::DEFAULT_INCLUDE`])
/// into the cache and returns the snapshot. Offline, or when the endpoint cannot be reached,
/// answers from the cache.
pub fn fetch_repo(opts: &HubOptions, r: &RepoRef, include: &[String]) -> Result<Snapshot> {
    let cache = RepoCache::new(&opts.cache, &r.repo);
    if opts.offline {
        return from_cache(opts, r, &cache, include, None).map_err(|why| {
            Error::Invalid(format!("HF_HUB_OFFLINE is set and hf:{}@{} {why}: fetch it once with the network (HF_HUB_OFFLINE unset)", r.repo, r.revision))
        });
    }
    let hub = Hub::new(opts)?;
    match fetch_online(&hub, r, &cache, include) {
        Ok(s) => Ok(s),
        Err(Failure::Other(e)) => Err(e),
        Err(Failure::Net(mut why)) => {
            if why.contains("certificate") {
                why.push_str(" — behind a TLS-inspecting proxy, point SSL_CERT_FILE at its CA bundle");
            }
            let warning = format!("cannot reach {}: {why}; using the cached snapshot", opts.endpoint);
            from_cache(opts, r, &cache, include, Some(warning)).map_err(|_| {
                Error::Invalid(format!(
                    "cannot reach {} for hf:{}@{}: {why} (check the network, a proxy in HTTPS_PROXY, or HF_ENDPOINT; nothing is cached to fall back on)",
                    opts.endpoint, r.repo, r.revision
                ))
            })
        }
    }
}

/// The cached snapshot of `r`, or why there is none.
fn from_cache(opts: &HubOptions, r: &RepoRef, cache: &RepoCache, include: &[String], warning: Option<String>) -> std::result::Result<Snapshot, String> {
    let where_ = format!("is not in the cache {}", opts.cache.display());
    let commit = cache.cached_commit(&r.revision).ok_or_else(|| where_.clone())?;
    let dir = cache.snapshot(&commit);
    if !dir.is_dir() {
        return Err(where_);
    }
    let files = cache.snapshot_files(&commit, include).map_err(|e| e.to_string())?;
    if files.is_empty() {
        return Err(format!("has no wanted files in {}", dir.display()));
    }
    if let Some(missing) = cache.missing_from_tree(&commit, include, &files) {
        return Err(format!("is only partly in the cache ({missing} missing from {})", dir.display()));
    }
    Ok(Snapshot { dir, commit, files, downloaded: 0, warning })
}

fn fetch_online(hub: &Hub, r: &RepoRef, cache: &RepoCache, include: &[String]) -> std::result::Result<Snapshot, Failure> {
    let info = hub.repo_info(r)?;
    // From here on a network failure is an error, not a reason to use a (partial) snapshot.
    fetch_files(hub, r, cache, include, info).map_err(|e| match e {
        Failure::Net(why) => Failure::Other(Error::Invalid(format!("hf:{}@{}: {why}", r.repo, r.revision))),
        other => other,
    })
}

fn fetch_files(hub: &Hub, r: &RepoRef, cache: &RepoCache, include: &[String], info: RepoInfo) -> std::result::Result<Snapshot, Failure> {
    let commit = info.sha.to_ascii_lowercase();
    if !is_commit(&commit) {
        return Err(Error::Invalid(format!("{}: the Hub answered commit {:?} for hf:{}@{}, not a commit id", hub.endpoint, info.sha, r.repo, r.revision)).into());
    }
    let mut files: Vec<String> = Vec::new();
    for s in info.siblings {
        if !safe_relative(&s.rfilename) {
            return Err(Error::Invalid(format!("{}: hf:{} lists a file named {:?}, which would land outside the snapshot: refused", hub.endpoint, r.repo, s.rfilename)).into());
        }
        if wanted(include, &s.rfilename) {
            files.push(s.rfilename);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(Error::Invalid(format!("hf:{}@{} has no files matching {}", r.repo, r.revision, if include.is_empty() { "the model files edgerl fetches by default (give --include GLOB)".into() } else { include.join(", ") })).into());
    }
    let snapshot = cache.snapshot(&commit);
    // Every blob first, then the snapshot links and the ref: a run cut short leaves no
    // snapshot that offline mode would take for complete.
    let mut downloaded = 0;
    let mut links = Vec::new();
    for path in &files {
        // Already in this snapshot (following the link): nothing to ask, as the Hub's client.
        if std::fs::metadata(snapshot.join(path)).is_ok() {
            continue;
        }
        let url = hub.resolve_url(&r.repo, &commit, path);
        let meta = hub.file_meta(&url, r, path)?;
        if !cache.blob(&meta.etag).is_file() {
            downloaded += download_blob(hub, cache, &url, path, &meta)?;
        }
        links.push((path, meta.etag));
    }
    for (path, etag) in links {
        cache.link(&commit, path, &etag)?;
    }
    cache.write_ref(&r.revision, &commit)?;
    Ok(Snapshot { dir: snapshot, commit, files, downloaded, warning: None })
}

/// Downloads one blob under its lock, resuming `{etag}.incomplete`; returns the bytes received.
fn download_blob(hub: &Hub, cache: &RepoCache, url: &str, path: &str, meta: &FileMeta) -> std::result::Result<u64, Failure> {
    let lock_path = cache.lock(&meta.etag);
    let blobs = cache.blob(&meta.etag).parent().unwrap().to_path_buf();
    for dir in [lock_path.parent().unwrap(), &blobs] {
        std::fs::create_dir_all(dir).map_err(|e| Error::file(dir, format!("cannot create: {e}")))?;
    }
    let lock = File::create(&lock_path).map_err(|e| Error::file(&lock_path, e))?;
    // Another edgerl (or huggingface_hub, which takes the same flock) may be writing this blob.
    let _ = lock.lock();
    let blob = cache.blob(&meta.etag);
    if blob.is_file() {
        return Ok(0);
    }
    let part = cache.incomplete(&meta.etag);
    let bar = hub.progress.then(|| {
        let b = indicatif::ProgressBar::new(meta.size);
        b.set_style(indicatif::ProgressStyle::with_template("{msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec}").unwrap());
        b.set_message(path.to_string());
        b
    });
    if meta.size == 0 {
        File::create(&part).map_err(|e| Error::file(&part, e))?;
    }
    let mut received = 0u64;
    let mut last_net = String::new();
    for _ in 0..ATTEMPTS {
        let have = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
        if have > meta.size {
            std::fs::remove_file(&part).map_err(|e| Error::file(&part, e))?;
            continue;
        }
        if have == meta.size {
            break;
        }
        match hub.get_into(url, &part, have, bar.as_ref()) {
            Ok(n) => received += n,
            Err(Failure::Net(mut why)) => {
            if why.contains("certificate") {
                why.push_str(" — behind a TLS-inspecting proxy, point SSL_CERT_FILE at its CA bundle");
            }
                received += std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0).saturating_sub(have);
                last_net = why;
            }
            Err(e) => return Err(e),
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let have = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
    if have != meta.size {
        if have > meta.size {
            let _ = std::fs::remove_file(&part);
        }
        let why = if last_net.is_empty() { format!("got {have} of {} bytes", meta.size) } else { last_net };
        return Err(Failure::Net(format!("downloading {path}: {why} ({have} of {} bytes kept in {}; run again to resume)", meta.size, part.display())));
    }
    // An LFS file's ETag is its sha256: check it (other files' ETags are git object ids).
    if meta.etag.len() == 64 && meta.etag.bytes().all(|b| b.is_ascii_hexdigit()) {
        let sum = super::sha256_file(&part)?;
        if !sum.eq_ignore_ascii_case(&meta.etag) {
            let _ = std::fs::remove_file(&part);
            return Err(Error::Invalid(format!("{url}: the downloaded {path} is corrupt: sha256 is {sum}, expected {} — refused and removed", meta.etag)).into());
        }
    }
    File::open(&part).and_then(|f| f.sync_all()).map_err(|e| Error::file(&part, e))?;
    std::fs::rename(&part, &blob).map_err(|e| Error::file(&blob, format!("cannot write: {e}")))?;
    Ok(received)
}

/// The HTTP side: one agent, the endpoint and the token.
struct Hub {
    agent: ureq::Agent,
    endpoint: String,
    token: Option<String>,
    progress: bool,
}

/// `scheme://host[:port]` of a URL.
fn origin(url: &str) -> &str {
    let rest = url.find("://").map_or(0, |i| i + 3);
    url[rest..].find('/').map_or(url, |i| &url[..rest + i])
}

/// Percent-encodes all but RFC 3986's unreserved characters (and `/` when `keep_slash`).
fn quote(s: &str, keep_slash: bool) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            b'/' if keep_slash => "/".into(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// An ETag header as a file name: without `W/` and quotes; only characters safe in a path.
fn normalize_etag(raw: &str) -> Option<String> {
    let e = raw.trim().trim_start_matches("W/").trim_matches('"');
    (!e.is_empty() && e.len() <= 128 && e.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')).then(|| e.to_string())
}

fn header<'a>(resp: &'a ureq::http::Response<ureq::Body>, name: &str) -> Option<&'a str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The certificates in a PEM bundle (SSL_CERT_FILE and friends).
fn read_certs(path: &std::path::Path) -> Result<Vec<ureq::tls::Certificate<'static>>> {
    let pem = std::fs::read(path).map_err(|e| Error::file(path, format!("cannot read the CA bundle (SSL_CERT_FILE): {e}")))?;
    let certs: Vec<_> = ureq::tls::parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect();
    if certs.is_empty() {
        return Err(Error::file(path, "has no PEM certificates (it is the CA bundle SSL_CERT_FILE, REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE names)"));
    }
    Ok(certs)
}

impl Hub {
    fn new(opts: &HubOptions) -> Result<Hub> {
        let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"].iter().any(|p| opts.endpoint.starts_with(p));
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(format!("edgerl/{}; hf_hub-compatible", env!("CARGO_PKG_VERSION")))
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_response(Some(Duration::from_secs(60)))
            .timeout_per_read(Some(Duration::from_secs(60)));
        if loopback {
            // A local Hub (a mirror, a test) is never reached through the user's proxy.
            config = config.proxy(None);
        }
        if let Some(path) = &opts.ca_bundle {
            let tls = ureq::tls::TlsConfig::builder().root_certs(ureq::tls::RootCerts::new_with_certs(&read_certs(path)?)).build();
            config = config.tls_config(tls);
        }
        Ok(Hub { agent: config.build().into(), endpoint: opts.endpoint.clone(), token: opts.token.clone(), progress: opts.progress })
    }

    fn resolve_url(&self, repo: &str, commit: &str, path: &str) -> String {
        format!("{}/{repo}/resolve/{commit}/{}", self.endpoint, quote(path, true))
    }

    /// One request to `url` with the Hub's headers; the token only when `url` is on the
    /// endpoint's host.
    /// [`Hub::send_once`], again after a pause when the connection fails or the server is busy
    /// (429, 5xx), as the Hub's client does: [`TRIES`] tries in all.
    fn send(&self, method: &str, url: &str, range_from: u64) -> std::result::Result<ureq::http::Response<ureq::Body>, Failure> {
        for attempt in 1.. {
            let got = self.send_once(method, url, range_from);
            let pause = match &got {
                Ok(r) if matches!(r.status().as_u16(), 429 | 500 | 502 | 503 | 504) => {
                    let asked = header(r, "Retry-After").and_then(|s| s.trim().parse::<u64>().ok()).map(Duration::from_secs);
                    asked.unwrap_or(RETRY_PAUSE * attempt).min(Duration::from_secs(30))
                }
                Err(Failure::Net(_)) => RETRY_PAUSE * attempt,
                _ => return got,
            };
            if attempt >= TRIES {
                return got;
            }
            log::warn!("{method} {url}: trying again in {pause:?}");
            std::thread::sleep(pause);
        }
        unreachable!()
    }

    fn send_once(&self, method: &str, url: &str, range_from: u64) -> std::result::Result<ureq::http::Response<ureq::Body>, Failure> {
        let mut req = match method {
            "HEAD" => self.agent.head(url),
            _ => self.agent.get(url),
        }
        .header("Accept-Encoding", "identity");
        if range_from > 0 {
            req = req.header("Range", format!("bytes={range_from}-"));
        }
        if let Some(t) = &self.token
            && origin(url) == origin(&self.endpoint)
        {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        req.call().map_err(|e| Failure::Net(e.to_string()))
    }

    /// Sends, following redirects: all of them (`follow_all`), or only relative ones, as the
    /// Hub gives for a renamed repository (a HEAD stops at the redirect to storage, which
    /// carries the X-Linked headers).
    fn send_following(&self, method: &str, url: &str, range_from: u64, follow_all: bool) -> std::result::Result<(String, ureq::http::Response<ureq::Body>), Failure> {
        let mut url = url.to_string();
        for _ in 0..10 {
            let resp = self.send(method, &url, range_from)?;
            let status = resp.status().as_u16();
            let Some(loc) = header(&resp, "Location").filter(|_| (300..400).contains(&status)) else {
                return Ok((url, resp));
            };
            let next = if loc.starts_with("http://") || loc.starts_with("https://") {
                loc.to_string()
            } else if loc.starts_with('/') {
                format!("{}{loc}", origin(&url))
            } else {
                return Err(Error::Invalid(format!("{url}: redirected to {loc:?}, which edgerl cannot follow")).into());
            };
            if !follow_all && !loc.starts_with('/') {
                return Ok((url, resp));
            }
            url = next;
        }
        Err(Error::Invalid(format!("{url}: too many redirects")).into())
    }

    fn repo_info(&self, r: &RepoRef) -> std::result::Result<RepoInfo, Failure> {
        let url = format!("{}/api/models/{}/revision/{}", self.endpoint, r.repo, quote(&r.revision, false));
        let (url, mut resp) = self.send_following("GET", &url, 0, true)?;
        let status = resp.status().as_u16();
        if status == 429 || status >= 500 {
            // Server trouble, not a verdict on the repo: like no network (the cache may serve).
            return Err(Failure::Net(format!("it answered HTTP {status} (busy or down)")));
        }
        if status != 200 {
            return Err(self.refused(&resp, r, None).into());
        }
        let body = resp.body_mut().with_config().limit(64 << 20).read_to_vec().map_err(|e| Failure::Net(e.to_string()))?;
        serde_json::from_slice(&body).map_err(|e| Error::Invalid(format!("{url}: not the Hub's repository info ({e})")).into())
    }

    fn file_meta(&self, url: &str, r: &RepoRef, path: &str) -> std::result::Result<FileMeta, Failure> {
        let (_, resp) = self.send_following("HEAD", url, 0, false)?;
        let status = resp.status().as_u16();
        if !(200..400).contains(&status) {
            return Err(self.refused(&resp, r, Some(path)).into());
        }
        let etag = header(&resp, "X-Linked-Etag").or_else(|| header(&resp, "ETag")).and_then(normalize_etag);
        let size = header(&resp, "X-Linked-Size")
            .or_else(|| if (300..400).contains(&status) { None } else { header(&resp, "Content-Length") })
            .and_then(|s| s.trim().parse::<u64>().ok());
        match (etag, size) {
            (Some(etag), Some(size)) => Ok(FileMeta { etag, size }),
            _ => Err(Error::Invalid(format!("{url}: the answer lacks a usable ETag or size (is HF_ENDPOINT={} a Hugging Face Hub?)", self.endpoint)).into()),
        }
    }

    /// GETs `url` from byte `from` and appends the body to `part`; returns the bytes written.
    /// A server that ignores the range starts the file over; 416 drops the partial file.
    fn get_into(&self, url: &str, part: &std::path::Path, from: u64, bar: Option<&indicatif::ProgressBar>) -> std::result::Result<u64, Failure> {
        let (url, mut resp) = self.send_following("GET", url, from, true)?;
        let status = resp.status().as_u16();
        let mut file = match status {
            206 if from > 0 => {
                let start = header(&resp, "Content-Range").and_then(|c| c.strip_prefix("bytes ")).and_then(|c| c.split('-').next()).and_then(|s| s.parse::<u64>().ok());
                if start != Some(from) {
                    return Err(Error::Invalid(format!("{url}: asked for bytes {from}- and got Content-Range {:?}", header(&resp, "Content-Range"))).into());
                }
                OpenOptions::new().append(true).open(part).map_err(|e| Error::file(part, e))?
            }
            200 => File::create(part).map_err(|e| Error::file(part, e))?,
            416 => {
                std::fs::remove_file(part).map_err(|e| Error::file(part, e))?;
                return Ok(0);
            }
            _ => return Err(Error::Invalid(format!("{url}: HTTP {status} while downloading"))).map_err(Failure::Other),
        };
        if let Some(b) = bar {
            b.set_position(if status == 206 { from } else { 0 });
        }
        let mut body = resp.body_mut().as_reader();
        let mut buf = vec![0u8; 256 << 10];
        let mut written = 0u64;
        loop {
            let n = match body.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    file.flush().map_err(|e| Error::file(part, e))?;
                    return Err(Failure::Net(format!("the connection broke: {e}")));
                }
            };
            file.write_all(&buf[..n]).map_err(|e| Error::file(part, format!("cannot write: {e}")))?;
            written += n as u64;
            if let Some(b) = bar {
                b.inc(n as u64);
            }
        }
        file.flush().map_err(|e| Error::file(part, e))?;
        Ok(written)
    }

    /// The error for a refusal, in words a user can act on.
    fn refused(&self, resp: &ureq::http::Response<ureq::Body>, r: &RepoRef, path: Option<&str>) -> Error {
        let status = resp.status().as_u16();
        let code = header(resp, "X-Error-Code").unwrap_or("");
        let said = header(resp, "X-Error-Message").map(|m| format!(" (the Hub says: {m})")).unwrap_or_default();
        let what = format!("hf:{}@{}", r.repo, r.revision);
        let page = format!("{}/{}", self.endpoint, r.repo);
        let token = if self.token.is_some() { "the token in HF_TOKEN (or $HF_HOME/token) cannot read it" } else { "no token was sent: set HF_TOKEN (or put one in $HF_HOME/token)" };
        Error::Invalid(match (status, code) {
            (_, "GatedRepo") | (403, _) => format!("{what}: access denied (HTTP {status}){said}: {page} is gated or private — accept its license on that page with your account, and make sure HF_TOKEN holds a token of that account with read access"),
            (401, _) => format!("{what}: unauthorized (HTTP 401){said}: the repository is private or gated, or does not exist; {token}, and accept the model's license on {page} if it asks"),
            (_, "RevisionNotFound") => format!("{what}: revision {:?} not found in {} (HTTP {status}){said}: check the branch, tag or commit", r.revision, r.repo),
            (_, "EntryNotFound") => format!("{what}: file {:?} not found (HTTP {status}){said}", path.unwrap_or("")),
            (404, _) => format!("{what}: repository not found at {} (HTTP 404){said}: check OWNER/NAME; a private repository needs HF_TOKEN", self.endpoint),
            _ => format!("{what}: HTTP {status} from {}{said}", self.endpoint),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(origin("https://huggingface.co/a/b"), "https://huggingface.co");
        assert_eq!(origin("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
        assert_eq!(quote("refs/pr/1", false), "refs%2Fpr%2F1");
        assert_eq!(quote("a b/c.json", true), "a%20b/c.json");
        assert_eq!(normalize_etag("W/\"abc-1\"").as_deref(), Some("abc-1"));
        assert_eq!(normalize_etag("\"../x\""), None);
    }
}
