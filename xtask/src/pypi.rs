//! PyPI sources: find a release's sdist in the package index (the PEP 691 JSON form of the
//! simple API), download it with curl (so proxies and `file://` indexes work), check its
//! sha256, and import it as a reproducible base commit.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use xshell::{Shell, cmd};

use crate::git::Checkout;
use crate::stack::hex;

/// The simple index; `XTASK_INDEX_URL` points it elsewhere. A `file://` index is a folder
/// with `<name>/index.json` in PEP 691 form (what a test or an offline mirror provides).
pub fn index_url() -> String {
    std::env::var("XTASK_INDEX_URL").unwrap_or_else(|_| "https://pypi.org/simple".to_string())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sdist {
    pub url: String,
    pub filename: String,
    pub sha256: String,
}

#[derive(Deserialize)]
struct Project {
    files: Vec<File>,
}

#[derive(Deserialize)]
struct File {
    filename: String,
    url: String,
    #[serde(default)]
    hashes: std::collections::BTreeMap<String, String>,
}

/// PEP 503 name normalisation.
pub fn normalize(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !out.ends_with('-') {
                out.push('-');
            }
        } else {
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// A project's page in the package index, fetched once and asked for versions and files.
pub struct Index {
    name: String,
    url: String,
    files: Vec<File>,
}

impl Index {
    pub fn fetch(sh: &Shell, name: &str) -> Result<Index> {
        let (json, url) = index_page(sh, name)?;
        Index::parse(&json, &url, name).with_context(|| format!("reading {url}"))
    }

    /// `url` is the page's own address, against which relative links resolve.
    pub fn parse(json: &str, url: &str, name: &str) -> Result<Index> {
        let project: Project = serde_json::from_str(json).context("reading the index's JSON")?;
        Ok(Index {
            name: name.to_string(),
            url: url.to_string(),
            files: project.files,
        })
    }

    /// `(file, version)` for each `.tar.gz` sdist of this project.
    fn sdists(&self) -> impl Iterator<Item = (&File, &str)> {
        let want = normalize(&self.name);
        self.files.iter().filter_map(move |f| {
            let (n, v) = f.filename.strip_suffix(".tar.gz")?.rsplit_once('-')?;
            (normalize(n) == want).then_some((f, v))
        })
    }

    /// Every version with a `.tar.gz` sdist.
    pub fn versions(&self) -> Vec<String> {
        let mut versions: Vec<String> = self.sdists().map(|(_, v)| v.to_string()).collect();
        versions.sort();
        versions.dedup();
        versions
    }

    /// The sdist of `version`.
    pub fn sdist(&self, version: &str) -> Result<Sdist> {
        let (file, _) = self
            .sdists()
            .find(|(_, v)| *v == version)
            .with_context(|| {
                format!("the index has no .tar.gz sdist of {} {version}", self.name)
            })?;
        let sha256 = file
            .hashes
            .get("sha256")
            .cloned()
            .context("the index gives no sha256")?;
        let url = if file.url.contains("://") {
            file.url.clone()
        } else {
            format!(
                "{}/{}",
                self.url
                    .rsplit_once('/')
                    .map_or(self.url.as_str(), |(dir, _)| dir),
                file.url
            )
        };
        Ok(Sdist {
            url,
            filename: file.filename.clone(),
            sha256,
        })
    }
}

/// Picks `name`'s `version` sdist out of the index page; `page_url` resolves relative links.
#[cfg(test)]
fn sdist_from_index(json: &str, page_url: &str, name: &str, version: &str) -> Result<Sdist> {
    Index::parse(json, page_url, name)?.sdist(version)
}

fn index_page(sh: &Shell, name: &str) -> Result<(String, String)> {
    let index = index_url();
    let index = index.trim_end_matches('/');
    let norm = normalize(name);
    let url = if index.starts_with("file://") {
        format!("{index}/{norm}/index.json")
    } else {
        format!("{index}/{norm}/")
    };
    let accept = "Accept: application/vnd.pypi.simple.v1+json";
    let json = cmd!(
        sh,
        "curl --fail --silent --show-error --location --proto =https,http,file -H {accept} {url}"
    )
    .quiet()
    .read()
    .with_context(|| format!("looking up {name} in the package index at {url}"))?;
    Ok((json, url))
}

/// A PEP 440 version, reduced to what ordering needs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Version {
    release: Vec<u64>,
    /// 0: a dev release of a final, 1: a pre-release, 2: final.
    phase: u8,
    pre: (u8, u64),
    post: i64,
    dev: u64,
}

fn parse_version(v: &str) -> Option<Version> {
    let v = v.trim().to_ascii_lowercase();
    let v = v.strip_prefix('v').unwrap_or(&v);
    let v = v.split('+').next()?;
    let end = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(v.len());
    let (rel, mut rest) = v.split_at(end);
    let mut release: Vec<u64> = rel
        .trim_end_matches('.')
        .split('.')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    while release.len() > 1 && release.last() == Some(&0) {
        release.pop();
    }
    let num = |s: &str| -> (u64, usize) {
        let s2 = s.trim_start_matches(['.', '-', '_']);
        let skipped = s.len() - s2.len();
        let digits = s2.find(|c: char| !c.is_ascii_digit()).unwrap_or(s2.len());
        (s2[..digits].parse().unwrap_or(0), skipped + digits)
    };
    let mut pre = None;
    for (word, kind) in [
        ("rc", 2),
        ("c", 2),
        ("alpha", 0),
        ("a", 0),
        ("beta", 1),
        ("b", 1),
    ] {
        let r = rest.trim_start_matches(['.', '-', '_']);
        if let Some(after) = r.strip_prefix(word) {
            let (n, used) = num(after);
            pre = Some((kind, n));
            rest = &after[used..];
            break;
        }
    }
    let mut post = -1;
    let r = rest.trim_start_matches(['.', '-', '_']);
    if let Some(after) = r.strip_prefix("post") {
        let (n, used) = num(after);
        post = n as i64;
        rest = &after[used..];
    }
    let mut dev = u64::MAX;
    let r = rest.trim_start_matches(['.', '-', '_']);
    if let Some(after) = r.strip_prefix("dev") {
        let (n, used) = num(after);
        dev = n;
        rest = &after[used..];
    }
    if !rest.trim_start_matches(['.', '-', '_']).is_empty() {
        return None;
    }
    let phase = match (pre, post, dev) {
        (Some(_), _, _) => 1,
        (None, -1, d) if d != u64::MAX => 0,
        _ => 2,
    };
    Some(Version {
        release,
        phase,
        pre: pre.unwrap_or((3, 0)),
        post,
        dev,
    })
}

fn is_prerelease(v: &Version) -> bool {
    v.phase < 2 || v.dev != u64::MAX
}

/// The newest version matching a PEP 440 specifier such as `>=50.0.2,<51`; pre-releases only
/// when the specifier names one.
pub fn newest_matching(versions: &[String], spec: &str) -> Result<Option<String>> {
    let mut clauses = Vec::new();
    for clause in spec.split(',').map(str::trim).filter(|c| !c.is_empty()) {
        let op_len = clause
            .find(|c: char| c.is_ascii_alphanumeric())
            .unwrap_or(clause.len());
        let (op, v) = clause.split_at(op_len);
        let op = op.trim();
        if !matches!(op, ">=" | "<=" | ">" | "<" | "==" | "!=" | "~=") {
            bail!(
                "`{clause}` in track `{spec}` is not a version specifier (>=, <=, >, <, ==, !=, ~=)"
            );
        }
        clauses.push((op.to_string(), v.trim().to_string()));
    }
    let allow_pre = clauses
        .iter()
        .any(|(_, v)| parse_version(v).is_some_and(|p| is_prerelease(&p)));
    // The release segments as written ("50.0.*" and "~=50.0.0" care about the zeros).
    let literal = |v: &str| -> Vec<u64> {
        v.trim_end_matches(".*")
            .split('.')
            .map_while(|p| p.parse().ok())
            .collect()
    };
    let has_prefix = |cand: &Version, prefix: &[u64]| {
        let mut padded = cand.release.clone();
        padded.resize(padded.len().max(prefix.len()), 0);
        padded.starts_with(prefix)
    };
    let matches = |cand: &Version| -> Result<bool> {
        for (op, v) in &clauses {
            let wildcard = v.ends_with(".*");
            let bound = parse_version(v.trim_end_matches(".*"))
                .with_context(|| format!("`{v}` is not a version"))?;
            let ok = match op.as_str() {
                ">=" => *cand >= bound,
                "<=" => *cand <= bound,
                ">" => *cand > bound,
                "<" => *cand < bound,
                "==" if wildcard => has_prefix(cand, &literal(v)),
                "==" => *cand == bound,
                "!=" if wildcard => !has_prefix(cand, &literal(v)),
                "!=" => *cand != bound,
                "~=" => {
                    let lit = literal(v);
                    *cand >= bound && has_prefix(cand, &lit[..lit.len().saturating_sub(1).max(1)])
                }
                _ => unreachable!(),
            };
            if !ok {
                return Ok(false);
            }
        }
        Ok(true)
    };
    let mut best: Option<(Version, &String)> = None;
    for v in versions {
        let Some(parsed) = parse_version(v) else {
            continue;
        };
        if (is_prerelease(&parsed) && !allow_pre) || !matches(&parsed)? {
            continue;
        }
        if best.as_ref().is_none_or(|(b, _)| parsed > *b) {
            best = Some((parsed, v));
        }
    }
    Ok(best.map(|(_, v)| v.clone()))
}

pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f =
        std::fs::File::open(path).with_context(|| format!("opening `{}`", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

/// An archive `download` kept in `cache` with this sha256, found without the index.
pub fn cached(cache: &Path, sha256: &str) -> Option<PathBuf> {
    fs_err::read_dir(cache.join(sha256))
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| !n.starts_with('.'))
        })
        .find(|p| sha256_file(p).is_ok_and(|got| got == sha256))
}

/// Downloads the sdist into `cache` (once) and checks it against the pinned sha256.
pub fn download(sh: &Shell, sdist: &Sdist, want_sha256: &str, cache: &Path) -> Result<PathBuf> {
    if sdist.filename.contains(['/', '\\']) || sdist.filename.starts_with('.') {
        bail!("refusing sdist file name `{}`", sdist.filename);
    }
    let dir = cache.join(want_sha256);
    let path = dir.join(&sdist.filename);
    if path.is_file() && sha256_file(&path)? == want_sha256 {
        return Ok(path);
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating `{}`", dir.display()))?;
    let tmp = dir.join(format!(".{}.part-{}", sdist.filename, std::process::id()));
    let url = &sdist.url;
    let fetched = cmd!(
        sh,
        "curl --fail --silent --show-error --location --proto =https,http,file -o {tmp} {url}"
    )
    .quiet()
    .run()
    .with_context(|| format!("downloading {url}"));
    if let Err(e) = fetched {
        let _ = fs_err::remove_file(&tmp);
        return Err(e);
    }
    let got = sha256_file(&tmp)?;
    if got != want_sha256 {
        let _ = fs_err::remove_file(&tmp);
        bail!(
            "{url} has sha256 {got}, but the stack pins {want_sha256}; the file was not kept. If the new file is trusted, update the sha256 pinned in stack.yaml"
        );
    }
    fs_err::rename(&tmp, &path)?;
    Ok(path)
}

/// Downloads `sdist` (checked against `sha256`) into `target/sdists/` and imports it into the
/// checkout: the one way a PyPI base becomes a commit, for sync and for updates.
pub fn download_and_import(
    co: &Checkout,
    target: &Path,
    name: &str,
    version: &str,
    sdist: &Sdist,
    sha256: &str,
) -> Result<String> {
    let archive = download(co.sh, sdist, sha256, &target.join("sdists"))?;
    import(co, &archive, name, version, sha256, target)
}

/// The ref under which an imported sdist's commit is kept.
pub fn import_ref(sha256: &str) -> String {
    format!("refs/xtask/sdist/{sha256}")
}

/// Unpacks the sdist (without its top-level folder) and commits it with a fixed author and
/// date, so the same archive gives the same commit id everywhere.
pub fn import(
    co: &Checkout,
    archive: &Path,
    name: &str,
    version: &str,
    sha256: &str,
    scratch: &Path,
) -> Result<String> {
    let tmp = scratch.join(format!("unpack-{name}-{}", std::process::id()));
    let _ = fs_err::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).with_context(|| format!("creating `{}`", tmp.display()))?;
    let sh = co.sh;
    let result = (|| -> Result<String> {
        cmd!(
            sh,
            "tar -xzf {archive} -C {tmp} --strip-components=1 --no-same-owner --no-same-permissions"
        )
        .quiet()
        .run()
        .with_context(|| format!("unpacking `{}`", archive.display()))?;
        let message = format!("Import {name} {version} sdist from PyPI\n\nsha256: {sha256}\n");
        co.commit_tree_from_dir(&tmp, &message)
    })();
    let _ = fs_err::remove_dir_all(&tmp);
    let id = result?;
    co.update_ref(&import_ref(sha256), &id, "xtask: import sdist")?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_archives_are_found_by_sha256_without_the_index() {
        let cache = std::env::temp_dir().join(format!("xtask-pypi-cached-{}", std::process::id()));
        let _ = fs_err::remove_dir_all(&cache);
        let body = b"an sdist";
        let sha = hex(&Sha256::digest(body));
        assert_eq!(cached(&cache, &sha), None);
        fs_err::create_dir_all(cache.join(&sha)).unwrap();
        // A partial download is never taken for the archive.
        fs_err::write(cache.join(&sha).join(".x-1.0.tar.gz.part-7"), body).unwrap();
        assert_eq!(cached(&cache, &sha), None);
        fs_err::write(cache.join(&sha).join("x-1.0.tar.gz"), body).unwrap();
        assert_eq!(
            cached(&cache, &sha),
            Some(cache.join(&sha).join("x-1.0.tar.gz"))
        );
        // A file whose content no longer matches is not used.
        fs_err::write(cache.join(&sha).join("x-1.0.tar.gz"), b"changed").unwrap();
        assert_eq!(cached(&cache, &sha), None);
        fs_err::remove_dir_all(&cache).unwrap();
    }

    #[test]
    fn newest_matching_follows_pep_440() {
        let vs: Vec<String> = [
            "49.0.0",
            "50.0.0",
            "50.0.1",
            "50.0.2",
            "51.0.0rc1",
            "51.0.0",
            "50.1.0.post1",
            "52.0.0.dev3",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let best = |spec: &str| newest_matching(&vs, spec).unwrap();
        assert_eq!(best(">=50.0.2"), Some("51.0.0".into()));
        assert_eq!(best(">=50.0.2,<51"), Some("50.1.0.post1".into()));
        assert_eq!(best("~=50.0.0"), Some("50.0.2".into()));
        assert_eq!(best("==50.*"), Some("50.1.0.post1".into()));
        assert_eq!(best("==50.0.1"), Some("50.0.1".into()));
        assert_eq!(best(">=51.0.0rc1,<51.0.0"), Some("51.0.0rc1".into()));
        assert_eq!(best(">=53"), None);
        assert!(newest_matching(&vs, "latest").is_err());
        assert!(parse_version("1.0rc1") < parse_version("1.0"));
        assert!(parse_version("1.0.dev1") < parse_version("1.0a1"));
        assert!(parse_version("1.0") < parse_version("1.0.post1"));
        assert_eq!(parse_version("1.0"), parse_version("1.0.0"));
    }

    #[test]
    fn picks_the_sdist_of_the_version() {
        let json = r#"{"meta":{"api-version":"1.1"},"files":[
            {"filename":"cryptography-50.0.2-cp311-abi3-manylinux_2_28_x86_64.whl","url":"https://f/x.whl","hashes":{"sha256":"aa"}},
            {"filename":"cryptography-50.0.1.tar.gz","url":"https://f/c-50.0.1.tar.gz","hashes":{"sha256":"cc"}},
            {"filename":"cryptography-50.0.2.tar.gz","url":"../../files/c.tar.gz","hashes":{"sha256":"bb"}}]}"#;
        let s = sdist_from_index(
            json,
            "file:///idx/cryptography/index.json",
            "Cryptography",
            "50.0.2",
        )
        .unwrap();
        assert_eq!(s.filename, "cryptography-50.0.2.tar.gz");
        assert_eq!(s.sha256, "bb");
        assert_eq!(s.url, "file:///idx/cryptography/../../files/c.tar.gz");
        assert!(sdist_from_index(json, "x", "cryptography", "9").is_err());
        assert_eq!(normalize("Brotli_CFFI.x"), "brotli-cffi-x");
    }
}
