//! PyPI sources: find a release's sdist in the package index (the PEP 691 JSON form of the
//! simple API), download it (`download.rs`), check its sha256, unpack it (`extract.rs`) and
//! import it as a reproducible base commit.

use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use xshell::Shell;

use crate::git::Checkout;

mod download;
mod extract;
mod version;

pub use download::{cached, download};
pub use extract::unpack_sdist;
pub use version::newest_matching;

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
    /// The size the index declares (PEP 700), the download's cap when given.
    pub size: Option<u64>,
    /// Whether the index is a `file://` one, the only kind whose `file:` links are followed.
    pub local: bool,
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
    size: Option<u64>,
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
        // It names a cache folder and a ref: nothing but a sha256 may get there.
        if !download::is_sha256(&sha256) {
            bail!(
                "the index gives `{sha256}` as the sha256 of {}",
                file.filename
            );
        }
        let url = resolve(&self.url, &file.url);
        let local = download::scheme(&self.url) == "file";
        if download::scheme(&url) == "file" && !local {
            bail!(
                "the index at {} links {} to a local file ({url}); `file:` links are followed only from a `file://` index",
                self.url,
                file.filename
            );
        }
        Ok(Sdist {
            url,
            filename: file.filename.clone(),
            sha256,
            size: file.size,
            local,
        })
    }
}

/// `link` as found on the page at `page`: absolute, host-relative (`/x`) or page-relative.
fn resolve(page: &str, link: &str) -> String {
    if link.contains("://") {
        return link.to_string();
    }
    let (scheme, rest) = page.split_once("://").unwrap_or(("", page));
    if let Some(host_relative) = link.strip_prefix("//") {
        return format!("{scheme}://{host_relative}");
    }
    if link.starts_with('/') {
        let host = rest.split('/').next().unwrap_or_default();
        return format!("{scheme}://{host}{link}");
    }
    let dir = page.rsplit_once('/').map_or(page, |(dir, _)| dir);
    format!("{dir}/{link}")
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
    let local = download::scheme(index) == "file";
    let url = if local {
        format!("{index}/{norm}/index.json")
    } else {
        format!("{index}/{norm}/")
    };
    let json = download::read_page(sh, &url, local)
        .with_context(|| format!("looking up {name} in the package index at {url}"))?;
    Ok((json, url))
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
    let result = (|| -> Result<String> {
        unpack_sdist(archive, &tmp)?;
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

    fn page(link: &str, sha: &str, size: &str) -> String {
        format!(
            r#"{{"meta":{{"api-version":"1.1"}},"files":[
            {{"filename":"cryptography-50.0.2-cp311-abi3-manylinux_2_28_x86_64.whl","url":"https://f/x.whl","hashes":{{"sha256":"aa"}}}},
            {{"filename":"cryptography-50.0.1.tar.gz","url":"https://f/c-50.0.1.tar.gz","hashes":{{"sha256":"cc"}}}},
            {{"filename":"cryptography-50.0.2.tar.gz","url":"{link}","hashes":{{"sha256":"{sha}"}}{size}}}]}}"#
        )
    }

    #[test]
    fn picks_the_sdist_of_the_version() {
        let sha = "b".repeat(64);
        let json = page("../../files/c.tar.gz", &sha, r#","size":1234"#);
        let s = sdist_from_index(
            &json,
            "file:///idx/cryptography/index.json",
            "Cryptography",
            "50.0.2",
        )
        .unwrap();
        assert_eq!(s.filename, "cryptography-50.0.2.tar.gz");
        assert_eq!(s.sha256, sha);
        assert_eq!(s.url, "file:///idx/cryptography/../../files/c.tar.gz");
        assert_eq!((s.size, s.local), (Some(1234), true));
        assert!(sdist_from_index(&json, "x", "cryptography", "9").is_err());
        assert_eq!(normalize("Brotli_CFFI.x"), "brotli-cffi-x");
        // What the index says is a sha256 becomes a path and a ref name.
        let err = sdist_from_index(
            &page("c.tar.gz", "../../x", ""),
            "file:///i/c/",
            "cryptography",
            "50.0.2",
        )
        .unwrap_err();
        assert!(err.to_string().contains("as the sha256"), "{err}");
    }

    #[test]
    fn a_remote_index_cannot_link_to_local_files() {
        let sha = "b".repeat(64);
        let remote = "https://pypi.org/simple/cryptography/";
        for link in ["file:///dev/zero", "FILE:///etc/passwd"] {
            let err = sdist_from_index(&page(link, &sha, ""), remote, "cryptography", "50.0.2")
                .unwrap_err();
            assert!(
                format!("{err:#}").contains("followed only from a `file://` index"),
                "{link}: {err:#}"
            );
        }
        let s = sdist_from_index(
            &page("/packages/c.tar.gz", &sha, ""),
            remote,
            "cryptography",
            "50.0.2",
        )
        .unwrap();
        assert_eq!(
            (s.url.as_str(), s.size, s.local),
            ("https://pypi.org/packages/c.tar.gz", None, false)
        );
    }

    #[test]
    fn links_resolve_against_the_page() {
        // (page, link, resolved)
        let table = [
            (
                "https://i.org/simple/p/",
                "https://f.org/a.tar.gz",
                "https://f.org/a.tar.gz",
            ),
            (
                "https://i.org/simple/p/",
                "//f.org/a.tar.gz",
                "https://f.org/a.tar.gz",
            ),
            (
                "https://i.org/simple/p/",
                "/files/a.tar.gz",
                "https://i.org/files/a.tar.gz",
            ),
            (
                "https://i.org/simple/p/",
                "../../f/a.tar.gz",
                "https://i.org/simple/p/../../f/a.tar.gz",
            ),
            (
                "file:///idx/p/index.json",
                "a.tar.gz",
                "file:///idx/p/a.tar.gz",
            ),
        ];
        for (page, link, want) in table {
            assert_eq!(resolve(page, link), want, "{page} {link}");
        }
    }
}
