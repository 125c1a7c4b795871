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

/// Picks `name`'s `version` sdist out of the index page; `page_url` resolves relative links.
pub fn sdist_from_index(json: &str, page_url: &str, name: &str, version: &str) -> Result<Sdist> {
    let project: Project = serde_json::from_str(json).context("reading the index's JSON")?;
    let want = normalize(name);
    let file = project
        .files
        .into_iter()
        .find(|f| {
            f.filename
                .strip_suffix(".tar.gz")
                .and_then(|stem| stem.rsplit_once('-'))
                .is_some_and(|(n, v)| normalize(n) == want && v == version)
        })
        .with_context(|| format!("the index has no .tar.gz sdist of {name} {version}"))?;
    let sha256 = file
        .hashes
        .get("sha256")
        .cloned()
        .context("the index gives no sha256")?;
    let url = if file.url.contains("://") {
        file.url
    } else {
        format!(
            "{}/{}",
            page_url.rsplit_once('/').map_or(page_url, |(dir, _)| dir),
            file.url
        )
    };
    Ok(Sdist {
        url,
        filename: file.filename,
        sha256,
    })
}

pub fn find_sdist(sh: &Shell, name: &str, version: &str) -> Result<Sdist> {
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
    sdist_from_index(&json, &url, name, version).with_context(|| format!("reading {url}"))
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
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    let got = sha256_file(&tmp)?;
    if got != want_sha256 {
        let _ = std::fs::remove_file(&tmp);
        bail!(
            "{url} has sha256 {got}, but the stack pins {want_sha256}; the file was not kept. If the new file is trusted, update `base.sha256` in stack.yaml"
        );
    }
    std::fs::rename(&tmp, &path)?;
    Ok(path)
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
    let _ = std::fs::remove_dir_all(&tmp);
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
    let _ = std::fs::remove_dir_all(&tmp);
    let id = result?;
    co.update_ref(&import_ref(sha256), &id, "xtask: import sdist")?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

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
