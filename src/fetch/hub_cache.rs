//! The Hugging Face Hub cache, in the layout `huggingface_hub` and transformers use, so a model
//! fetched by edgerl is found by them and the reverse:
//!
//! ```text
//! {cache}/models--OWNER--NAME/blobs/{etag}              the files' bytes, named by ETag
//!                            /blobs/{etag}.incomplete   a download in progress (resumable)
//!                            /snapshots/{commit}/{path} links to ../../blobs/{etag} (copies
//!                                                       where there are no symlinks)
//!                            /refs/{revision}           the commit a branch or tag named
//! {cache}/.locks/models--OWNER--NAME/{etag}.lock        held while a blob is written
//! ```
//!
//! Also here: the environment (`HF_ENDPOINT`, `HF_HUB_CACHE`, `HF_HOME`, `HF_TOKEN`,
//! `HF_HUB_OFFLINE`), the `hf:OWNER/NAME[@REVISION]` spec, and the file-name globs.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// What the Hub client needs from its surroundings; [`HubOptions::from_env`] reads them the
/// way `huggingface_hub` does.
#[derive(Clone, Debug)]
pub struct HubOptions {
    /// Base URL, without a trailing slash (`$HF_ENDPOINT`, default https://huggingface.co).
    pub endpoint: String,
    /// The hub cache folder (the one holding `models--…`).
    pub cache: PathBuf,
    /// Sent as `Authorization: Bearer …` to the endpoint (never to other hosts).
    pub token: Option<String>,
    /// `HF_HUB_OFFLINE=1`: answer from the cache only.
    pub offline: bool,
    /// Draw progress bars on stderr.
    pub progress: bool,
    /// PEM certificates to trust instead of the built-in Mozilla roots: `$SSL_CERT_FILE`, else
    /// `$REQUESTS_CA_BUNDLE`, else `$CURL_CA_BUNDLE` (behind a TLS-inspecting proxy, say).
    pub ca_bundle: Option<PathBuf>,
}

fn env(k: &str) -> Option<String> {
    std::env::var(k).ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

fn env_true(k: &str) -> bool {
    env(k).is_some_and(|v| matches!(v.to_ascii_uppercase().as_str(), "1" | "ON" | "YES" | "TRUE"))
}

/// `$HF_HOME`, else `$XDG_CACHE_HOME/huggingface`, else `~/.cache/huggingface`.
fn hf_home() -> PathBuf {
    if let Some(h) = env("HF_HOME") {
        return PathBuf::from(h);
    }
    if let Some(x) = env("XDG_CACHE_HOME") {
        return Path::new(&x).join("huggingface");
    }
    match env("HOME").or_else(|| env("USERPROFILE")) {
        Some(h) => Path::new(&h).join(".cache").join("huggingface"),
        None => PathBuf::from(".cache").join("huggingface"),
    }
}

impl HubOptions {
    pub fn from_env(progress: bool) -> Result<HubOptions> {
        let endpoint = env("HF_ENDPOINT").unwrap_or_else(|| "https://huggingface.co".into());
        let endpoint = endpoint.trim_end_matches('/').to_string();
        if !(endpoint.starts_with("https://") || endpoint.starts_with("http://")) {
            return Err(Error::Invalid(format!("HF_ENDPOINT={endpoint:?}: expected an http:// or https:// URL")));
        }
        let cache = env("HF_HUB_CACHE")
            .or_else(|| env("HUGGINGFACE_HUB_CACHE"))
            .map(PathBuf::from)
            .unwrap_or_else(|| hf_home().join("hub"));
        let token = match env("HF_TOKEN") {
            Some(t) => Some(t),
            None => {
                let path = env("HF_TOKEN_PATH").map(PathBuf::from).unwrap_or_else(|| hf_home().join("token"));
                std::fs::read_to_string(path).ok().map(|t| t.trim().to_string()).filter(|t| !t.is_empty())
            }
        };
        let ca_bundle = ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"].iter().find_map(|k| env(k)).map(PathBuf::from);
        Ok(HubOptions { endpoint, cache, token, offline: env_true("HF_HUB_OFFLINE"), progress, ca_bundle })
    }
}

/// A model repository and the revision (branch, tag or commit) asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepoRef {
    pub repo: String,
    pub revision: String,
}

/// Parses `OWNER/NAME[@REVISION]` (the part after `hf:`); the revision defaults to `main`.
pub fn parse_spec(spec: &str) -> Result<RepoRef> {
    let bad = |why: &str| Error::Invalid(format!("hf:{spec}: {why} (expected hf:OWNER/NAME or hf:OWNER/NAME@REVISION)"));
    let (repo, revision) = match spec.split_once('@') {
        Some((r, rev)) => (r, rev),
        None => (spec, "main"),
    };
    let parts: Vec<&str> = repo.split('/').collect();
    let name_ok = |p: &str| {
        !p.is_empty() && p != "." && p != ".." && !p.contains("--") && p.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    };
    if parts.is_empty() || parts.len() > 2 || !parts.iter().all(|p| name_ok(p)) {
        return Err(bad("not a repository name"));
    }
    if !safe_relative(revision) {
        return Err(bad("not a revision name"));
    }
    Ok(RepoRef { repo: repo.to_string(), revision: revision.to_string() })
}

/// A relative path that stays inside its folder: no empty, `.` or `..` parts, no leading `/`,
/// no backslashes or NULs (file names and revisions come from outside).
pub fn safe_relative(p: &str) -> bool {
    !p.is_empty()
        && !p.contains(['\\', '\0', ':'])
        && p.split('/').all(|c| !c.is_empty() && c != "." && c != "..")
}

/// A 40-hex git commit id.
pub fn is_commit(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Files a model needs when no `--include` is given: configs, weights, tokenizer, processor and
/// template files, license; not other formats' weights (`*.bin`, `*.onnx`, `*.gguf`, …).
pub const DEFAULT_INCLUDE: &[&str] = &["*.json", "*.safetensors", "tokenizer*", "*.jinja", "*.txt", "*.model", "LICENSE*"];

/// fnmatch as `huggingface_hub` applies it to repo paths: `*` matches any run (`/` included),
/// `?` one character, `[abc]`/`[a-z]`/`[!x]` a set; a pattern ending in `/` means everything
/// under that folder.
pub fn glob_match(pattern: &str, path: &str) -> bool {
    let p: Vec<char> = if pattern.ends_with('/') { format!("{pattern}*").chars().collect() } else { pattern.chars().collect() };
    let s: Vec<char> = path.chars().collect();
    matches(&p, &s)
}

/// Left to right, going back only to the latest `*` (letting it take one more character): every
/// other element matches exactly one character, so that is enough, and the time stays
/// O(pattern × path). Trying every split at every `*` took exponential time on patterns such as
/// `*a*a*a*a*a*a*b` (`--include` comes from the command line, paths from the Hub).
fn matches(p: &[char], s: &[char]) -> bool {
    let (mut pi, mut si) = (0, 0);
    // After the latest `*`: where the pattern resumes, and where the path resumes next time.
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if p.get(pi) == Some(&'*') {
            pi += 1;
            star = Some((pi, si));
            continue;
        }
        if let Some(used) = p.get(pi).and_then(|_| one(&p[pi..], s[si])) {
            pi += used;
            si += 1;
            continue;
        }
        let Some((sp, ss)) = star else { return false };
        pi = sp;
        si = ss + 1;
        star = Some((sp, si));
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Whether the element at the head of `p` (not `*`) matches `c`: the pattern characters it
/// uses, or `None`.
fn one(p: &[char], c: char) -> Option<usize> {
    match p.first()? {
        '?' => Some(1),
        '[' => match class(&p[1..], Some(c)) {
            Some((true, used)) => Some(1 + used),
            Some((false, _)) => None,
            // An unclosed `[` is a literal.
            None => (c == '[').then_some(1),
        },
        &x => (x == c).then_some(1),
    }
}

/// A `[...]` set (after the `[`): whether `c` is in it and how many pattern chars it used
/// (through the `]`); None when unclosed.
fn class(p: &[char], c: Option<char>) -> Option<(bool, usize)> {
    let negate = matches!(p.first(), Some('!'));
    let start = usize::from(negate);
    let close = p.iter().enumerate().skip(start + 1).find(|(_, ch)| **ch == ']').map(|(i, _)| i)?;
    let set = &p[start..close];
    let c = c?;
    let mut hit = false;
    let mut i = 0;
    while i < set.len() {
        if i + 2 < set.len() && set[i + 1] == '-' {
            hit |= set[i] <= c && c <= set[i + 2];
            i += 3;
        } else {
            hit |= set[i] == c;
            i += 1;
        }
    }
    Some((hit != negate, close + 1))
}

/// Whether a repo path is wanted: it matches one of `include` (or of [`DEFAULT_INCLUDE`] when
/// `include` is empty).
pub fn wanted(include: &[String], path: &str) -> bool {
    if include.is_empty() {
        DEFAULT_INCLUDE.iter().any(|g| glob_match(g, path))
    } else {
        include.iter().any(|g| glob_match(g, path))
    }
}

/// One repository's folder in the cache.
pub struct RepoCache {
    pub root: PathBuf,
    locks: PathBuf,
}

impl RepoCache {
    pub fn new(cache: &Path, repo: &str) -> RepoCache {
        let name = format!("models--{}", repo.replace('/', "--"));
        RepoCache { root: cache.join(&name), locks: cache.join(".locks").join(name) }
    }

    pub fn blob(&self, etag: &str) -> PathBuf {
        self.root.join("blobs").join(etag)
    }

    pub fn incomplete(&self, etag: &str) -> PathBuf {
        self.root.join("blobs").join(format!("{etag}.incomplete"))
    }

    pub fn lock(&self, etag: &str) -> PathBuf {
        self.locks.join(format!("{etag}.lock"))
    }

    pub fn snapshot(&self, commit: &str) -> PathBuf {
        self.root.join("snapshots").join(commit)
    }

    /// The commit `refs/{revision}` names, if the cache has it.
    pub fn read_ref(&self, revision: &str) -> Option<String> {
        let s = std::fs::read_to_string(self.root.join("refs").join(revision)).ok()?;
        let s = s.trim();
        is_commit(s).then(|| s.to_string())
    }

    /// Records that `revision` is `commit` (only for branch and tag names, as the Hub's client
    /// does).
    pub fn write_ref(&self, revision: &str, commit: &str) -> Result<()> {
        if revision == commit || self.read_ref(revision).as_deref() == Some(commit) {
            return Ok(());
        }
        let path = self.root.join("refs").join(revision);
        write_atomic(&path, commit.as_bytes())
    }

    /// The commit a revision is in the cache: itself when it is a commit id, else its ref.
    pub fn cached_commit(&self, revision: &str) -> Option<String> {
        if is_commit(revision) { Some(revision.to_ascii_lowercase()) } else { self.read_ref(revision) }
    }

    /// Puts `snapshots/{commit}/{path}` in place for blob `etag`: a relative symlink where the
    /// platform has them, else a copy; written under a temporary name and renamed.
    pub fn link(&self, commit: &str, path: &str, etag: &str) -> Result<()> {
        let pointer = self.snapshot(commit).join(path);
        let parent = pointer.parent().expect("a snapshot path has a parent");
        std::fs::create_dir_all(parent).map_err(|e| Error::file(parent, format!("cannot create: {e}")))?;
        let tmp = tmp_beside(&pointer);
        let _ = std::fs::remove_file(&tmp);
        #[cfg(unix)]
        {
            // snapshots/{commit}/a/b.json → ../../../blobs/{etag}: one `..` per folder level.
            let up = "../".repeat(2 + path.matches('/').count());
            std::os::unix::fs::symlink(format!("{up}blobs/{etag}"), &tmp).map_err(|e| Error::file(&tmp, format!("cannot link: {e}")))?;
        }
        #[cfg(not(unix))]
        std::fs::copy(self.blob(etag), &tmp).map_err(|e| Error::file(&tmp, format!("cannot copy: {e}")))?;
        std::fs::rename(&tmp, &pointer).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            Error::file(&pointer, format!("cannot write: {e}"))
        })
    }

    /// A wanted file the commit's tree listing names but `files` lacks. huggingface_hub (2.x)
    /// keeps the listing as `trees/{commit}.json`; without one, nothing can be said.
    pub fn missing_from_tree(&self, commit: &str, include: &[String], files: &[String]) -> Option<String> {
        let text = std::fs::read_to_string(self.root.join("trees").join(format!("{commit}.json"))).ok()?;
        let tree: serde_json::Value = serde_json::from_str(&text).ok()?;
        if tree["format_version"] != 1 {
            return None;
        }
        tree["files"].as_object()?.keys().find(|p| wanted(include, p) && !files.contains(p)).cloned()
    }

    /// The files of a cached snapshot that `include` wants, relative paths, sorted; every one
    /// must lead to its bytes (a dangling link means the blob is gone).
    pub fn snapshot_files(&self, commit: &str, include: &[String]) -> Result<Vec<String>> {
        let dir = self.snapshot(commit);
        let mut out = Vec::new();
        walk(&dir, "", &mut out)?;
        out.retain(|p| wanted(include, p));
        for p in &out {
            if std::fs::metadata(dir.join(p)).is_err() {
                return Err(Error::file(&dir.join(p), "is in the snapshot but its blob is missing: fetch again online"));
            }
        }
        out.sort();
        Ok(out)
    }
}

fn file_name(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// A temporary name beside `path`, unique to this process and call (threads fetching the same
/// repository must not share one).
fn tmp_beside(path: &Path) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    path.with_file_name(format!(".{}.tmp-{}-{n}", file_name(path), std::process::id()))
}

/// Every file and link under `dir`, as relative '/'-joined paths (temporary names skipped).
fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) -> Result<()> {
    let rd = std::fs::read_dir(dir).map_err(|e| Error::file(dir, e))?;
    for entry in rd {
        let entry = entry.map_err(|e| Error::file(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && name.contains(".tmp-") {
            continue;
        }
        let rel = if prefix.is_empty() { name.clone() } else { format!("{prefix}/{name}") };
        let ty = entry.file_type().map_err(|e| Error::file(&entry.path(), e))?;
        if ty.is_dir() {
            walk(&entry.path(), &rel, out)?;
        } else {
            out.push(rel);
        }
    }
    Ok(())
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename, so a
/// reader never sees half of it.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let parent = path.parent().expect("a cache path has a parent");
    std::fs::create_dir_all(parent).map_err(|e| Error::file(parent, format!("cannot create: {e}")))?;
    let tmp = tmp_beside(path);
    let result = std::fs::write(&tmp, bytes).and_then(|_| std::fs::rename(&tmp, path));
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::file(path, format!("cannot write: {e}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_bad_ones_are_refused() {
        assert_eq!(parse_spec("HuggingFaceTB/SmolVLM-256M-Instruct").unwrap(), RepoRef { repo: "HuggingFaceTB/SmolVLM-256M-Instruct".into(), revision: "main".into() });
        assert_eq!(parse_spec("gpt2@v1.0").unwrap().revision, "v1.0");
        assert_eq!(parse_spec("a/b@refs/pr/1").unwrap().revision, "refs/pr/1");
        for bad in ["", "a/b/c", "../x", "a/..", "a/b@", "a/b@../../etc", "a b/c", "a--b/c", "/a"] {
            assert!(parse_spec(bad).is_err(), "{bad:?} accepted");
        }
    }

    /// Many `*`s against a long path that almost matches: trying every split at every `*` took
    /// C(200, 12) steps (hours); the matcher must answer at once.
    #[test]
    fn globs_take_linear_time() {
        let path = "a".repeat(200);
        let t = std::time::Instant::now();
        assert!(!glob_match(&format!("{}b", "*a".repeat(12)), &path));
        assert!(glob_match(&format!("{}*", "*a".repeat(12)), &path));
        assert!(t.elapsed() < std::time::Duration::from_secs(1), "{:?}", t.elapsed());
    }

    #[test]
    fn globs_follow_fnmatch() {
        assert!(glob_match("*.json", "config.json"));
        assert!(glob_match("*.json", "onnx/config.json"), "* crosses / as in fnmatch");
        assert!(!glob_match("*.json", "model.safetensors"));
        assert!(glob_match("tokenizer*", "tokenizer_config.json"));
        assert!(glob_match("model-0000?-of-*.safetensors", "model-00001-of-00002.safetensors"));
        assert!(glob_match("[!.]*", "config.json") && !glob_match("[!.]*", ".gitattributes"));
        assert!(glob_match("[a-c]x", "bx") && !glob_match("[a-c]x", "dx"));
        assert!(glob_match("onnx/", "onnx/model.onnx") && !glob_match("onnx/", "model.onnx"));
        assert!(glob_match("[x", "[x"));
        // Backtracking cases: a `*` giving back characters, empty runs, a trailing `*`.
        assert!(glob_match("*a*b", "xaab") && glob_match("a**b*", "ab") && !glob_match("*a*b", "xaabc"));
        assert!(glob_match("*?", "x") && !glob_match("*?", "") && glob_match("*[ab]", "cccb") && !glob_match("*[ab]", "cbc"));
        let none: Vec<String> = Vec::new();
        assert!(wanted(&none, "chat_template.jinja") && wanted(&none, "merges.txt") && !wanted(&none, "onnx/model.onnx") && !wanted(&none, "pytorch_model.bin"));
    }

    #[test]
    fn unsafe_paths_are_refused() {
        for bad in ["../x", "a/../../x", "/etc/passwd", "a//b", "a\\b", "c:x", "./a", ""] {
            assert!(!safe_relative(bad), "{bad:?}");
        }
        assert!(safe_relative("onnx/model.onnx"));
    }
}
