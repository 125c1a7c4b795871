//! Fetching from the package index: index pages and sdists, each under a size cap, `file:`
//! links only from a `file://` index, and the sdist cache (`<cache>/<sha256>/<file name>`)
//! that never holds a partial or unverified file.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use xshell::{Shell, cmd};

use super::Sdist;
use super::extract::size;
use crate::lock::CheckoutLock;
use crate::stack::hex;

/// The largest sdist downloaded when the index declares no size (and the most it may
/// declare). Documented in docs/stack-format.md (`base`).
pub const MAX_SDIST_BYTES: u64 = 256 << 20;
/// The largest index page read (PyPI's biggest project pages are a few MB).
const MAX_PAGE_BYTES: u64 = 64 << 20;

/// The scheme of `url`, lower-case (`https`, `file`), or "" when it has none.
pub fn scheme(url: &str) -> String {
    url.split_once("://")
        .map(|(s, _)| s.to_ascii_lowercase())
        .unwrap_or_default()
}

/// The index page at `url` as text. `file:` only when `local` (the index is a `file://` one).
pub(super) fn read_page(sh: &Shell, url: &str, local: bool) -> Result<String> {
    let mut out = Vec::new();
    match scheme(url).as_str() {
        "file" if local => {
            local_file(url, MAX_PAGE_BYTES)?
                .take(MAX_PAGE_BYTES + 1)
                .read_to_end(&mut out)
                .with_context(|| format!("reading {url}"))?;
        }
        "https" | "http" => {
            let accept = "Accept: application/vnd.pypi.simple.v1+json";
            let max = MAX_PAGE_BYTES.to_string();
            out = cmd!(
                sh,
                "curl --fail --silent --show-error --location --proto =https,http --proto-redir =https,http --max-filesize {max} -H {accept} {url}"
            )
            .quiet()
            .read()
            .with_context(|| format!("fetching {url}"))?
            .into_bytes();
        }
        _ => bail!("{url}: an index is reached over https, http or (a local one) file"),
    }
    if out.len() as u64 > MAX_PAGE_BYTES {
        bail!("{url} is larger than {}", size(MAX_PAGE_BYTES));
    }
    String::from_utf8(out).with_context(|| format!("{url} is not UTF-8"))
}

/// Opens the regular file a `file://` URL names, refusing devices, fifos and anything over
/// `cap` bytes before reading a byte of it.
fn local_file(url: &str, cap: u64) -> Result<File> {
    let path = file_url_path(url).with_context(|| format!("{url} is not a local file URL"))?;
    let meta = std::fs::metadata(&path).with_context(|| format!("reading {url}"))?;
    if !meta.is_file() {
        bail!("{url} is not a regular file");
    }
    if meta.len() > cap {
        bail!("{url} is {} bytes, more than {}", meta.len(), size(cap));
    }
    File::open(&path).with_context(|| format!("opening {url}"))
}

/// `file:///a/b%20c` -> `/a/b c` (an empty or `localhost` host only).
fn file_url_path(url: &str) -> Option<PathBuf> {
    let rest = &url[url.find("://")? + 3..];
    let rest = rest.strip_prefix("localhost").unwrap_or(rest);
    if !rest.starts_with('/') {
        return None;
    }
    let bytes = rest.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let path = String::from_utf8(out).ok()?;
    // `file:///C:/x` names `C:/x` on Windows.
    #[cfg(windows)]
    let path = match path.as_bytes() {
        [b'/', _, b':', ..] => path[1..].to_string(),
        _ => path,
    };
    Some(PathBuf::from(path))
}

/// Fetches `sdist` into `to` under its cap; returns the bytes written.
fn fetch(sh: &Shell, sdist: &Sdist, cap: u64, to: &Path) -> Result<u64> {
    let url = &sdist.url;
    match scheme(url).as_str() {
        "file" if sdist.local => {
            let mut from = local_file(url, cap)?.take(cap + 1);
            let mut out =
                File::create(to).with_context(|| format!("creating `{}`", to.display()))?;
            std::io::copy(&mut from, &mut out).with_context(|| format!("copying {url}"))?;
        }
        "file" => bail!("{url}: `file:` links are followed only from a `file://` index"),
        "https" | "http" => {
            // curl stops at a declared length over the cap; the size check below catches a
            // server that declared none.
            let max = cap.to_string();
            cmd!(
                sh,
                "curl --fail --silent --show-error --location --proto =https,http --proto-redir =https,http --max-filesize {max} -o {to} {url}"
            )
            .quiet()
            .run()
            .with_context(|| format!("downloading {url}"))?;
        }
        _ => bail!("{url}: sdists are downloaded over https or http"),
    }
    let len = std::fs::metadata(to)
        .with_context(|| format!("reading `{}`", to.display()))?
        .len();
    if len > cap {
        bail!("{url} is larger than {}", size(cap));
    }
    Ok(len)
}

pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = File::open(path).with_context(|| format!("opening `{}`", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("reading `{}`", path.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

/// An archive `download` kept in `cache` with this sha256, found without the index.
pub fn cached(cache: &Path, sha256: &str) -> Option<PathBuf> {
    std::fs::read_dir(cache.join(sha256))
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

/// Downloads the sdist into `cache` (once) and checks it against the pinned sha256. The
/// download goes to `<cache>/.<sha256>.part` under `<cache>/.<sha256>.lock`; only a file with
/// the right size and hash is renamed into `<cache>/<sha256>/`.
pub fn download(sh: &Shell, sdist: &Sdist, want_sha256: &str, cache: &Path) -> Result<PathBuf> {
    if sdist.filename.contains(['/', '\\']) || sdist.filename.starts_with('.') {
        bail!("refusing sdist file name `{}`", sdist.filename);
    }
    if !is_sha256(want_sha256) {
        bail!("`{want_sha256}` is not a sha256 (64 lower-case hex digits)");
    }
    let dir = cache.join(want_sha256);
    let path = dir.join(&sdist.filename);
    if path.is_file() && sha256_file(&path)? == want_sha256 {
        return Ok(path);
    }
    let cap = match sdist.size {
        Some(n) if n > MAX_SDIST_BYTES => bail!(
            "the index declares {} as {n} bytes, more than the {} an sdist may have",
            sdist.url,
            size(MAX_SDIST_BYTES)
        ),
        Some(n) => n,
        None => MAX_SDIST_BYTES,
    };
    let _lock = CheckoutLock::acquire(
        &cache.join(format!(".{want_sha256}.lock")),
        &format!("downloading {}", sdist.filename),
    )?;
    // Another process may have finished it while this one waited.
    if path.is_file() && sha256_file(&path)? == want_sha256 {
        return Ok(path);
    }
    remove_stale_parts(cache);
    let part = cache.join(format!(".{want_sha256}.part"));
    // Ours, left by an interrupted run: this process holds its lock.
    let _ = std::fs::remove_file(&part);
    let url = &sdist.url;
    let result = (|| -> Result<()> {
        let len = fetch(sh, sdist, cap, &part)?;
        if let Some(declared) = sdist.size
            && len != declared
        {
            bail!("{url} is {len} bytes, but the index declares {declared}");
        }
        let got = sha256_file(&part)?;
        if got != want_sha256 {
            bail!(
                "{url} has sha256 {got}, but the stack pins {want_sha256}; the file was not kept. If the new file is trusted, update the sha256 pinned in stack.yaml"
            );
        }
        std::fs::create_dir_all(&dir).with_context(|| format!("creating `{}`", dir.display()))?;
        std::fs::rename(&part, &path)
            .with_context(|| format!("renaming `{}` to `{}`", part.display(), path.display()))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&part);
        // Only ever removes an empty folder (one an older version left after a mismatch).
        let _ = std::fs::remove_dir(&dir);
    }
    result.map(|()| path)
}

/// Removes every `.<sha256>.part` in `cache` whose lock nobody holds: what an interrupted
/// download left. A part whose download is under way (lock held) is left alone.
fn remove_stale_parts(cache: &Path) {
    let Ok(entries) = std::fs::read_dir(cache) else {
        return;
    };
    for entry in entries.filter_map(|e| e.ok()) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(sha) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".part")) else {
            continue;
        };
        let lock = cache.join(format!(".{sha}.lock"));
        let free = OpenOptions::new()
            .write(true)
            .open(&lock)
            .map(|f| !matches!(f.try_lock(), Err(TryLockError::WouldBlock)))
            .unwrap_or(true);
        if free {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

pub(super) fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_archives_are_found_by_sha256_without_the_index() {
        let cache = std::env::temp_dir().join(format!("xtask-pypi-cached-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&cache);
        let body = b"an sdist";
        let sha = hex(&Sha256::digest(body));
        assert_eq!(cached(&cache, &sha), None);
        std::fs::create_dir_all(cache.join(&sha)).unwrap();
        // A partial download is never taken for the archive.
        std::fs::write(cache.join(&sha).join(".x-1.0.tar.gz.part-7"), body).unwrap();
        assert_eq!(cached(&cache, &sha), None);
        std::fs::write(cache.join(&sha).join("x-1.0.tar.gz"), body).unwrap();
        assert_eq!(
            cached(&cache, &sha),
            Some(cache.join(&sha).join("x-1.0.tar.gz"))
        );
        // A file whose content no longer matches is not used.
        std::fs::write(cache.join(&sha).join("x-1.0.tar.gz"), b"changed").unwrap();
        assert_eq!(cached(&cache, &sha), None);
        std::fs::remove_dir_all(&cache).unwrap();
    }

    #[test]
    fn file_urls_name_local_paths() {
        // (URL, path)
        let table: &[(&str, Option<&str>)] = &[
            ("file:///idx/a.tar.gz", Some("/idx/a.tar.gz")),
            ("FILE://localhost/idx/a%20b.tar.gz", Some("/idx/a b.tar.gz")),
            ("file://host/idx", None),
            ("file:///bad%zz", None),
            ("/no/scheme", None),
        ];
        for (url, want) in table {
            assert_eq!(file_url_path(url), want.map(PathBuf::from), "{url}");
        }
        assert_eq!(scheme("HTTPS://x"), "https");
        // A device is refused before a byte is read (curl copied /dev/zero without end).
        #[cfg(unix)]
        assert!(
            local_file("file:///dev/zero", 10)
                .unwrap_err()
                .to_string()
                .contains("is not a regular file")
        );
        assert_eq!(scheme("x.tar.gz"), "");
    }
}
