//! `edgerl fetch hf:OWNER/NAME[@REVISION]` against a local server laid out like the Hugging Face
//! Hub: the repo-info API, `resolve` URLs that answer small files themselves and redirect LFS
//! files to a storage host (`/cdn/{sha256}`, with `X-Linked-Etag`/`X-Linked-Size`), Range
//! requests, the Hub's `X-Error-Code`s, a private and a gated repository — and faults on demand
//! (a connection dropped mid-file, corrupt bytes).
#![cfg(feature = "fetch")]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use edgerl::fetch::{HubOptions, fetch_repo, parse_spec};
use sha2::{Digest, Sha256};

const FIXTURE: &str = "tests/fixtures/models/llama_f32";
const OLD_FIXTURE: &str = "tests/fixtures/models/smollm_tied_f32";
const TOKEN: &str = "hf_test_secret";

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256(b: &[u8]) -> String {
    hex(&Sha256::digest(b))
}

struct HubFile {
    path: String,
    bytes: Vec<u8>,
    /// LFS files are served through the storage redirect, named by their sha256.
    lfs: bool,
}

impl HubFile {
    fn etag(&self) -> String {
        if self.lfs { sha256(&self.bytes) } else { sha256(&[b"blob ".as_slice(), &self.bytes].concat())[..40].to_string() }
    }
}

struct Repo {
    /// Revision name → commit; commit → files.
    refs: HashMap<String, String>,
    commits: HashMap<String, Vec<HubFile>>,
    /// Private: every Hub request needs this token.
    token: Option<String>,
    /// Gated: file downloads are refused with 403 GatedRepo.
    gated: bool,
}

/// One request as the server saw it.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    path: String,
    range: Option<String>,
    auth: Option<String>,
}

#[derive(Default)]
struct State {
    repos: HashMap<String, Repo>,
    log: Vec<Seen>,
    /// sha256 → (bytes to send before dropping the connection, how many more times).
    drop: HashMap<String, (usize, usize)>,
    /// sha256s served with one byte flipped.
    corrupt: Vec<String>,
    /// How many more repo-info requests answer 503 (a busy Hub).
    busy: usize,
    /// The storage host LFS files redirect to (another port: another origin).
    storage: String,
}

struct Server {
    url: String,
    state: Arc<Mutex<State>>,
}

const C_OLD: &str = "1111111111111111111111111111111111111111";
const C_MAIN: &str = "2222222222222222222222222222222222222222";

fn fixture_files(dir: &str, names: &[&str]) -> Vec<HubFile> {
    names
        .iter()
        .map(|n| HubFile { path: n.to_string(), bytes: std::fs::read(Path::new(dir).join(n)).unwrap(), lfs: n.ends_with(".safetensors") })
        .collect()
}

/// tiny/llama: `main` (and `C_MAIN`) is the llama fixture plus files a model does not need;
/// tag `v1` (`C_OLD`) is an older commit with other weights and config.
fn tiny_llama() -> Repo {
    let mut main = fixture_files(FIXTURE, &["config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]);
    main.push(HubFile { path: "empty.txt".into(), bytes: Vec::new(), lfs: false });
    main.push(HubFile { path: "onnx/model.onnx".into(), bytes: b"not wanted".to_vec(), lfs: true });
    main.push(HubFile { path: "README.md".into(), bytes: b"# tiny".to_vec(), lfs: false });
    main.push(HubFile { path: ".gitattributes".into(), bytes: b"*.safetensors filter=lfs".to_vec(), lfs: false });
    let old = fixture_files(OLD_FIXTURE, &["config.json", "model.safetensors", "tokenizer.json"]);
    Repo {
        refs: HashMap::from([("main".into(), C_MAIN.into()), ("v1".into(), C_OLD.into())]),
        commits: HashMap::from([(C_MAIN.into(), main), (C_OLD.into(), old)]),
        token: None,
        gated: false,
    }
}

fn one_commit(files: Vec<HubFile>, token: Option<&str>, gated: bool) -> Repo {
    Repo { refs: HashMap::from([("main".into(), C_MAIN.into())]), commits: HashMap::from([(C_MAIN.into(), files)]), token: token.map(String::from), gated }
}

fn start() -> Server {
    let mut st = State::default();
    st.repos.insert("tiny/llama".into(), tiny_llama());
    st.repos.insert("me/private".into(), one_commit(fixture_files(FIXTURE, &["config.json", "model.safetensors"]), Some(TOKEN), false));
    st.repos.insert("org/gated".into(), one_commit(fixture_files(FIXTURE, &["config.json"]), None, true));
    let evil = vec![HubFile { path: "../../escape.json".into(), bytes: b"{}".to_vec(), lfs: false }];
    st.repos.insert("evil/repo".into(), one_commit(evil, None, false));
    let state = Arc::new(Mutex::new(st));
    let storage = listen(&state);
    state.lock().unwrap().storage = storage.clone();
    Server { url: listen(&state), state }
}

/// A listener on a free port answering from `state`, one thread per connection; its URL.
fn listen(state: &Arc<Mutex<State>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let s = state.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let s = s.clone();
            std::thread::spawn(move || {
                let _ = serve(conn, &s);
            });
        }
    });
    url
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// Answers one request (every connection is closed after its answer).
fn serve(conn: TcpStream, state: &Mutex<State>) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h)?;
        if h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let path = target.split('?').next().unwrap().to_string();
    let seen = Seen { method: method.clone(), path: path.clone(), range: headers.get("range").cloned(), auth: headers.get("authorization").cloned() };
    let mut st = state.lock().unwrap();
    st.log.push(seen.clone());
    let reply = route(&mut st, &seen);
    drop(st);
    let (status, extra, body, cut) = reply;
    let mut conn = conn;
    let mut head = format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    conn.write_all(head.as_bytes())?;
    if method != "HEAD" {
        conn.write_all(&body[..cut.unwrap_or(body.len()).min(body.len())])?;
    }
    conn.flush()?;
    conn.shutdown(std::net::Shutdown::Both)
}

type Reply = (u16, Vec<(String, String)>, Vec<u8>, Option<usize>);

fn error(status: u16, code: &str) -> Reply {
    (status, vec![("X-Error-Code".into(), code.into()), ("X-Error-Message".into(), format!("{code} (test server)"))], b"{\"error\":\"no\"}".to_vec(), None)
}

fn route(st: &mut State, req: &Seen) -> Reply {
    if let Some(sha) = req.path.strip_prefix("/cdn/") {
        return storage(st, sha, req.range.as_deref());
    }
    let (api, rest) = match req.path.strip_prefix("/api/models/") {
        Some(r) => (true, r.to_string()),
        None => (false, req.path.trim_start_matches('/').to_string()),
    };
    if api && st.busy > 0 {
        st.busy -= 1;
        return (503, vec![("Retry-After".into(), "0".into())], Vec::new(), None);
    }
    let sep = if api { "/revision/" } else { "/resolve/" };
    let Some((name, tail)) = rest.split_once(sep) else { return error(404, "RepoNotFound") };
    // A renamed repository: the Hub answers with a relative redirect to the new name.
    if let Some(moved) = name.strip_prefix("old/") {
        return (307, vec![("Location".into(), req.path.replacen(&format!("old/{moved}"), &format!("tiny/{moved}"), 1))], Vec::new(), None);
    }
    let Some(repo) = st.repos.get(name) else { return error(404, "RepoNotFound") };
    if let Some(t) = &repo.token
        && req.auth.as_deref() != Some(&format!("Bearer {t}"))
    {
        return error(401, "RepoNotFound");
    }
    let (rev, file) = if api { (decode(tail), String::new()) } else { tail.split_once('/').map(|(r, f)| (decode(r), decode(f))).unwrap_or_default() };
    let commit = repo.refs.get(&rev).cloned().unwrap_or(rev);
    let Some(files) = repo.commits.get(&commit) else { return error(404, "RevisionNotFound") };
    if api {
        let siblings: Vec<_> = files.iter().map(|f| serde_json::json!({ "rfilename": f.path })).collect();
        let body = serde_json::json!({ "id": name, "sha": commit, "siblings": siblings, "private": repo.token.is_some() });
        return (200, vec![("Content-Type".into(), "application/json".into())], body.to_string().into_bytes(), None);
    }
    if repo.gated {
        return error(403, "GatedRepo");
    }
    let Some(f) = files.iter().find(|f| f.path == file) else { return error(404, "EntryNotFound") };
    let mut h = vec![("X-Repo-Commit".into(), commit.clone())];
    if f.lfs {
        // As the Hub: a redirect to storage; the linked ETag and size are on the redirect.
        h.push(("Location".into(), format!("{}/cdn/{}?signed=1", st.storage, f.etag())));
        h.push(("X-Linked-Etag".into(), format!("\"{}\"", f.etag())));
        h.push(("X-Linked-Size".into(), f.bytes.len().to_string()));
        h.push(("ETag".into(), "\"not-the-content-hash\"".into()));
        return (302, h, Vec::new(), None);
    }
    h.push(("ETag".into(), format!("W/\"{}\"", f.etag())));
    (200, h, f.bytes.clone(), None)
}

/// The storage host: LFS blobs by sha256, with `Range: bytes=N-`.
fn storage(st: &mut State, sha: &str, range: Option<&str>) -> Reply {
    let Some(mut bytes) = st.repos.values().flat_map(|r| r.commits.values().flatten()).find(|f| f.lfs && f.etag() == sha).map(|f| f.bytes.clone()) else {
        return (404, vec![], Vec::new(), None);
    };
    if st.corrupt.iter().any(|c| c == sha) {
        bytes[7] ^= 0x55;
    }
    let from = range.map(|r| r.strip_prefix("bytes=").and_then(|r| r.strip_suffix('-')).expect("only bytes=N- ranges").parse::<usize>().unwrap());
    let cut = match st.drop.get_mut(sha) {
        Some((after, times)) if *times > 0 => {
            *times -= 1;
            Some(*after)
        }
        _ => None,
    };
    match from {
        Some(n) if n >= bytes.len() => (416, vec![], Vec::new(), None),
        Some(n) => {
            let h = vec![("Content-Range".into(), format!("bytes {n}-{}/{}", bytes.len() - 1, bytes.len()))];
            (206, h, bytes[n..].to_vec(), cut)
        }
        None => (200, vec![], bytes, cut),
    }
}

impl Server {
    fn log(&self) -> Vec<Seen> {
        self.state.lock().unwrap().log.clone()
    }
    fn clear_log(&self) {
        self.state.lock().unwrap().log.clear();
    }
    fn file(&self, repo: &str, commit: &str, path: &str) -> (Vec<u8>, String) {
        let st = self.state.lock().unwrap();
        let f = st.repos[repo].commits[commit].iter().find(|f| f.path == path).unwrap();
        (f.bytes.clone(), f.etag())
    }
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("edgerl-hub-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn opts(s: &Server, dir: &Path) -> HubOptions {
    HubOptions { endpoint: s.url.clone(), cache: dir.join("hub"), token: None, offline: false, progress: false, ca_bundle: None }
}

fn fetch(o: &HubOptions, spec: &str, include: &[&str]) -> edgerl::Result<edgerl::fetch::Snapshot> {
    let inc: Vec<String> = include.iter().map(|s| s.to_string()).collect();
    fetch_repo(o, &parse_spec(spec)?, &inc)
}

#[test]
fn fetch_makes_the_hub_cache_layout_and_a_second_fetch_downloads_nothing() {
    let s = start();
    let dir = tmp("layout");
    let o = opts(&s, &dir);
    let snap = fetch(&o, "tiny/llama", &[]).unwrap();
    let repo = dir.join("hub/models--tiny--llama");
    assert_eq!(snap.dir, repo.join("snapshots").join(C_MAIN));
    assert_eq!(snap.commit, C_MAIN);
    assert_eq!(snap.files, ["config.json", "empty.txt", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"], "default set: not onnx/README/.gitattributes");
    assert_eq!(std::fs::read_to_string(repo.join("refs/main")).unwrap(), C_MAIN);
    for f in &snap.files {
        let (bytes, etag) = s.file("tiny/llama", C_MAIN, f);
        assert_eq!(std::fs::read(snap.dir.join(f)).unwrap(), bytes, "{f}");
        assert_eq!(std::fs::read(repo.join("blobs").join(&etag)).unwrap(), bytes, "blobs/{etag}");
        #[cfg(unix)]
        assert_eq!(std::fs::read_link(snap.dir.join(f)).unwrap(), Path::new("../../blobs").join(&etag), "{f} is a relative link to its blob");
    }
    assert!(!snap.dir.join("onnx").exists() && !snap.dir.join("README.md").exists());
    let leftovers: Vec<_> = std::fs::read_dir(repo.join("blobs")).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().contains("incomplete")).collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert!(snap.downloaded > 578_000, "{}", snap.downloaded);
    // The storage host never sees the token; the resolve requests ask for identity encoding.
    let log = s.log();
    assert!(log.iter().any(|r| r.method == "HEAD" && r.path.ends_with("/resolve/2222222222222222222222222222222222222222/model.safetensors")), "{log:?}");
    assert!(log.iter().any(|r| r.method == "GET" && r.path.starts_with("/cdn/")), "{log:?}");

    s.clear_log();
    let again = fetch(&o, "tiny/llama", &[]).unwrap();
    assert_eq!((again.dir, again.downloaded), (snap.dir.clone(), 0));
    let log = s.log();
    assert_eq!(log.len(), 1, "only the revision lookup: {log:?}");
    assert!(log[0].path.starts_with("/api/models/tiny/llama/revision/main"));

    // A narrower include fetches (here: re-links) only what it names.
    let json = fetch(&o, "tiny/llama", &["*.json"]).unwrap();
    assert_eq!(json.files, ["config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"]);
    // A renamed repository's relative redirects are followed.
    let moved = fetch(&o, "old/llama", &["tokenizer*"]).unwrap();
    assert_eq!(moved.files, ["tokenizer.json", "tokenizer_config.json"]);
    assert_eq!(std::fs::read(moved.dir.join("tokenizer.json")).unwrap(), s.file("tiny/llama", C_MAIN, "tokenizer.json").0);
    let none = fetch(&o, "tiny/llama", &["*.gguf"]).unwrap_err().to_string();
    assert!(none.contains("no files matching *.gguf"), "{none}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Fetches of one repository at once (threads here; processes take the same per-blob lock
/// as huggingface_hub) all succeed and agree.
#[test]
fn fetches_at_once_share_the_cache() {
    let s = start();
    let dir = tmp("together");
    let o = opts(&s, &dir);
    let got: Vec<_> = std::thread::scope(|sc| {
        let runs: Vec<_> = (0..4).map(|_| sc.spawn(|| fetch(&o, "tiny/llama", &[]).map(|s| (s.dir, s.downloaded)))).collect();
        runs.into_iter().map(|r| r.join().unwrap().unwrap()).collect()
    });
    let (weights, sha) = s.file("tiny/llama", C_MAIN, "model.safetensors");
    assert!(got.iter().all(|(d, _)| *d == got[0].0));
    assert_eq!(std::fs::read(got[0].0.join("model.safetensors")).unwrap(), weights);
    let cdn = s.log().iter().filter(|r| r.path == format!("/cdn/{sha}")).count();
    assert_eq!(cdn, 1, "the lock lets one fetch download the weights");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_dropped_connection_is_resumed_with_range() {
    let s = start();
    let dir = tmp("resume");
    let o = opts(&s, &dir);
    let (bytes, sha) = s.file("tiny/llama", C_MAIN, "model.safetensors");
    s.state.lock().unwrap().drop.insert(sha.clone(), (100_000, 1));
    let snap = fetch(&o, "tiny/llama", &["model.safetensors"]).unwrap();
    assert_eq!(std::fs::read(snap.dir.join("model.safetensors")).unwrap(), bytes);
    let ranges: Vec<_> = s.log().into_iter().filter(|r| r.path.starts_with("/cdn/")).map(|r| r.range).collect();
    assert_eq!(ranges, [None, Some("bytes=100000-".to_string())]);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A run whose connection keeps dropping fails, leaves only `{sha}.incomplete` (no blob, no
/// snapshot entry: nothing that looks complete); the next run resumes where it stopped.
#[test]
fn an_interrupted_run_leaves_only_an_incomplete_blob_and_the_next_resumes() {
    let s = start();
    let dir = tmp("interrupted");
    let o = opts(&s, &dir);
    let (bytes, sha) = s.file("tiny/llama", C_MAIN, "model.safetensors");
    s.state.lock().unwrap().drop.insert(sha.clone(), (10_000, 100));
    let e = fetch(&o, "tiny/llama", &[]).unwrap_err().to_string();
    assert!(e.contains("model.safetensors") && e.contains("run again to resume"), "{e}");
    let blobs = dir.join("hub/models--tiny--llama/blobs");
    let part = std::fs::metadata(blobs.join(format!("{sha}.incomplete"))).unwrap().len();
    assert_eq!(part, 50_000, "five attempts of 10000 bytes each, appended");
    assert!(!blobs.join(&sha).exists());
    // The files fetched before the failure are blobs, not yet a snapshot; no ref either.
    assert!(!dir.join("hub/models--tiny--llama/snapshots").exists() && !dir.join("hub/models--tiny--llama/refs").exists());
    let e = fetch(&HubOptions { offline: true, ..o.clone() }, "tiny/llama", &[]).unwrap_err().to_string();
    assert!(e.contains("not in the cache"), "{e}");

    s.state.lock().unwrap().drop.clear();
    s.clear_log();
    let snap = fetch(&o, "tiny/llama", &[]).unwrap();
    assert_eq!(std::fs::read(snap.dir.join("model.safetensors")).unwrap(), bytes);
    // The rest of the weights, and the two files after them that the failed run never reached.
    let after: usize = ["tokenizer.json", "tokenizer_config.json"].iter().map(|f| s.file("tiny/llama", C_MAIN, f).0.len()).sum();
    assert_eq!(snap.downloaded, (bytes.len() - 50_000 + after) as u64);
    let cdn: Vec<_> = s.log().into_iter().filter(|r| r.path.starts_with("/cdn/")).collect();
    assert_eq!(cdn.len(), 1, "{cdn:?}");
    assert_eq!(cdn[0].range.as_deref(), Some("bytes=50000-"));
    assert!(!blobs.join(format!("{sha}.incomplete")).exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_corrupt_blob_is_refused_and_removed() {
    let s = start();
    let dir = tmp("corrupt");
    let o = opts(&s, &dir);
    let (_, sha) = s.file("tiny/llama", C_MAIN, "model.safetensors");
    s.state.lock().unwrap().corrupt.push(sha.clone());
    let e = fetch(&o, "tiny/llama", &["model.safetensors"]).unwrap_err().to_string();
    assert!(e.contains("corrupt") && e.contains(&format!("expected {sha}")), "{e}");
    let blobs = dir.join("hub/models--tiny--llama/blobs");
    assert_eq!(std::fs::read_dir(&blobs).unwrap().count(), 0, "nothing kept");
    assert!(std::fs::symlink_metadata(dir.join("hub/models--tiny--llama/snapshots").join(C_MAIN).join("model.safetensors")).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_token_goes_to_the_hub_and_not_to_storage() {
    let s = start();
    let dir = tmp("token");
    let mut o = opts(&s, &dir);
    let e = fetch(&o, "me/private", &[]).unwrap_err().to_string();
    assert!(e.contains("401") && e.contains("no token was sent") && e.contains("HF_TOKEN"), "{e}");
    o.token = Some("hf_wrong".into());
    let e = fetch(&o, "me/private", &[]).unwrap_err().to_string();
    assert!(e.contains("401") && e.contains("cannot read it"), "{e}");
    o.token = Some(TOKEN.into());
    s.clear_log();
    let snap = fetch(&o, "me/private", &[]).unwrap();
    assert_eq!(snap.files, ["config.json", "model.safetensors"]);
    let log = s.log();
    for r in &log {
        let want = (!r.path.starts_with("/cdn/")).then(|| format!("Bearer {TOKEN}"));
        assert_eq!(r.auth, want, "{r:?}");
    }
    assert!(log.iter().any(|r| r.path.starts_with("/cdn/")));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_revision_pins_the_snapshot() {
    let s = start();
    let dir = tmp("revision");
    let o = opts(&s, &dir);
    let v1 = fetch(&o, "tiny/llama@v1", &[]).unwrap();
    assert_eq!(v1.commit, C_OLD);
    assert_eq!(v1.files, ["config.json", "model.safetensors", "tokenizer.json"]);
    let (old_weights, _) = s.file("tiny/llama", C_OLD, "model.safetensors");
    assert_eq!(std::fs::read(v1.dir.join("model.safetensors")).unwrap(), old_weights);
    let repo = dir.join("hub/models--tiny--llama");
    assert_eq!(std::fs::read_to_string(repo.join("refs/v1")).unwrap(), C_OLD);
    let main = fetch(&o, "tiny/llama", &[]).unwrap();
    assert_ne!(std::fs::read(main.dir.join("config.json")).unwrap(), std::fs::read(v1.dir.join("config.json")).unwrap());
    // A commit id pins without a ref; both snapshots stay side by side.
    let pinned = fetch(&o, &format!("tiny/llama@{C_OLD}"), &[]).unwrap();
    assert_eq!((pinned.dir, pinned.downloaded), (v1.dir.clone(), 0));
    assert!(!repo.join("refs").join(C_OLD).exists());
    let e = fetch(&o, "tiny/llama@nope", &[]).unwrap_err().to_string();
    assert!(e.contains("revision \"nope\" not found"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn offline_mode_answers_from_the_cache_only() {
    let s = start();
    let dir = tmp("offline");
    let mut o = opts(&s, &dir);
    o.offline = true;
    let e = fetch(&o, "tiny/llama", &[]).unwrap_err().to_string();
    assert!(e.contains("HF_HUB_OFFLINE") && e.contains("not in the cache"), "{e}");
    o.offline = false;
    let online = fetch(&o, "tiny/llama", &[]).unwrap();
    o.offline = true;
    s.clear_log();
    let off = fetch(&o, "tiny/llama", &[]).unwrap();
    assert_eq!((&off.dir, &off.files), (&online.dir, &online.files));
    let pinned = fetch(&o, &format!("tiny/llama@{C_MAIN}"), &["*.json"]).unwrap();
    assert_eq!(pinned.files.len(), 4);
    let e = fetch(&o, "tiny/llama@v1", &[]).unwrap_err().to_string();
    assert!(e.contains("HF_HUB_OFFLINE") && e.contains("tiny/llama@v1"), "{e}");
    assert!(s.log().is_empty(), "offline asked the server: {:?}", s.log());
    // huggingface_hub 2.x's tree listing, when there is one, tells a partial snapshot.
    let trees = dir.join("hub/models--tiny--llama/trees");
    std::fs::create_dir_all(&trees).unwrap();
    let listing = serde_json::json!({"format_version": 1, "files": {"config.json": {"size": 1, "blob_id": "x"}, "extra.json": {"size": 1, "blob_id": "y"}, "big.bin": {"size": 1, "blob_id": "z"}}});
    std::fs::write(trees.join(format!("{C_MAIN}.json")), listing.to_string()).unwrap();
    let e = fetch(&o, "tiny/llama", &[]).unwrap_err().to_string();
    assert!(e.contains("only partly in the cache (extra.json missing"), "{e}");
    assert!(fetch(&o, "tiny/llama", &["config.json"]).is_ok(), "the files asked for are all there");
    std::fs::remove_dir_all(&trees).unwrap();
    // A blob gone from under its link is reported, not served.
    let (_, etag) = s.file("tiny/llama", C_MAIN, "config.json");
    std::fs::remove_file(dir.join("hub/models--tiny--llama/blobs").join(etag)).unwrap();
    let e = fetch(&o, "tiny/llama", &[]).unwrap_err().to_string();
    assert!(e.contains("blob is missing"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn refusals_and_failures_say_what_to_do() {
    let s = start();
    let dir = tmp("errors");
    let o = opts(&s, &dir);
    let e = fetch(&o, "nobody/nothing", &[]).unwrap_err().to_string();
    assert!(e.contains("repository not found") && e.contains("HTTP 404"), "{e}");
    let e = fetch(&o, "org/gated", &[]).unwrap_err().to_string();
    assert!(e.contains("403") && e.contains("gated") && e.contains("license") && e.contains("HF_TOKEN"), "{e}");
    let e = fetch(&o, "evil/repo", &["*"]).unwrap_err().to_string();
    assert!(e.contains("outside the snapshot"), "{e}");
    assert!(!dir.join("escape.json").exists() && !dir.join("hub/escape.json").exists());
    assert!(parse_spec("a/b/c").unwrap_err().to_string().contains("hf:OWNER/NAME"));
    let not_pem = HubOptions { ca_bundle: Some(Path::new(FIXTURE).join("config.json")), ..o.clone() };
    let e = fetch(&not_pem, "tiny/llama", &[]).unwrap_err().to_string();
    assert!(e.contains("config.json") && e.contains("no PEM certificates") && e.contains("SSL_CERT_FILE"), "{e}");

    // Nothing listening, or a Hub that stays busy (503): a clear error with nothing cached…
    let dead = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let down = HubOptions { endpoint: format!("http://{dead}"), ..o.clone() };
    let e = fetch(&down, "tiny/llama", &[]).unwrap_err().to_string();
    assert!(e.contains("cannot reach") && e.contains("nothing is cached"), "{e}");
    s.state.lock().unwrap().busy = 3;
    let e = fetch(&o, "tiny/llama", &[]).unwrap_err().to_string();
    assert!(e.contains("HTTP 503") && e.contains("nothing is cached"), "{e}");
    // …a busy moment is waited out (asked again)…
    s.state.lock().unwrap().busy = 2;
    s.clear_log();
    let online = fetch(&o, "tiny/llama", &[]).unwrap();
    assert_eq!(s.log().iter().filter(|r| r.path.starts_with("/api/")).count(), 3);
    // …and otherwise the cached snapshot is used, with a warning.
    s.state.lock().unwrap().busy = 3;
    let busy = fetch(&o, "tiny/llama", &[]).unwrap();
    assert!(busy.warning.as_deref().is_some_and(|w| w.contains("HTTP 503")), "{:?}", busy.warning);
    let fallback = fetch(&down, "tiny/llama", &[]).unwrap();
    assert_eq!(fallback.dir, online.dir);
    assert!(fallback.warning.as_deref().is_some_and(|w| w.contains("cannot reach")), "{:?}", fallback.warning);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The command line, end to end: HF_ENDPOINT, HF_HOME (cache and token file), HF_TOKEN,
/// HF_HUB_OFFLINE, --include; the snapshot folder on stdout.
#[test]
fn the_cli_fetches_into_hf_home() {
    let s = start();
    let dir = tmp("cli");
    let run = |home: &Path, args: &[&str], env: &[(&str, &str)]| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_edgerl"));
        c.arg("fetch").args(args).env("HF_ENDPOINT", &s.url).env("HF_HOME", home).env("NO_PROXY", "127.0.0.1");
        for k in ["HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_TOKEN", "HF_TOKEN_PATH", "HF_HUB_OFFLINE", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"] {
            c.env_remove(k);
        }
        c.envs(env.iter().copied());
        let out = c.output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).trim().to_string(), String::from_utf8_lossy(&out.stderr).to_string())
    };
    let home = dir.join("home");
    let (ok, stdout, stderr) = run(&home, &["hf:tiny/llama", "--include", "*.json", "--include", "tokenizer*"], &[]);
    assert!(ok, "{stderr}");
    let snap = home.join("hub/models--tiny--llama/snapshots").join(C_MAIN);
    assert_eq!(PathBuf::from(&stdout), snap);
    let mut names: Vec<String> = std::fs::read_dir(&snap).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(names, ["config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"]);
    assert!(stderr.contains(&format!("commit {C_MAIN}: 4 files")), "{stderr}");

    // The snapshot (links into blobs/) is a model directory edgerl loads: it scores text as the
    // fixture it came from does.
    let (ok, full, stderr) = run(&home, &["hf:tiny/llama"], &[]);
    assert!(ok && full == stdout, "{stderr}");
    let score = |model: &str| {
        let xdg = std::env::temp_dir().join("edgerl-test-xdg");
        std::fs::create_dir_all(&xdg).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_edgerl")).args(["score", "--model", model, "--text", "hello world", "--json"]).env("XDG_RUNTIME_DIR", &xdg).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(score(&full), score(FIXTURE));

    let (ok, again, _) = run(&home, &["hf:tiny/llama", "--include", "*.json"], &[("HF_HUB_OFFLINE", "1")]);
    assert!(ok && again == stdout, "{again}");
    let (ok, _, stderr) = run(&home, &["hf:tiny/llama@v1"], &[("HF_HUB_OFFLINE", "1")]);
    assert!(!ok && stderr.contains("HF_HUB_OFFLINE is set") && stderr.contains("not in the cache"), "{stderr}");

    // The token: from HF_TOKEN, and from $HF_HOME/token.
    let (ok, _, stderr) = run(&home, &["hf:me/private"], &[]);
    assert!(!ok && stderr.contains("HF_TOKEN"), "{stderr}");
    let (ok, out, stderr) = run(&home, &["hf:me/private"], &[("HF_TOKEN", TOKEN)]);
    assert!(ok && out.ends_with(C_MAIN), "{stderr}");
    let home2 = dir.join("home2");
    std::fs::create_dir_all(&home2).unwrap();
    std::fs::write(home2.join("token"), format!("{TOKEN}\n")).unwrap();
    let (ok, _, stderr) = run(&home2, &["hf:me/private"], &[]);
    assert!(ok, "{stderr}");
    // HF_HUB_CACHE wins over HF_HOME.
    let (ok, out, stderr) = run(&home, &["hf:tiny/llama", "--include", "config.json"], &[("HF_HUB_CACHE", dir.join("elsewhere").to_str().unwrap())]);
    assert!(ok && out.starts_with(dir.join("elsewhere").to_str().unwrap()), "{out} {stderr}");
    let (ok, _, stderr) = run(&home, &["hf:a/b/c"], &[]);
    assert!(!ok && stderr.contains("hf:OWNER/NAME"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}
