//! A wheel as the audit sees it: its tags (file name and `WHEEL`) and its shared objects, read
//! from the zip in memory (nothing is extracted, so a hostile archive's paths reach no disk).

use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result, bail};

use super::list::Version;
use super::rules::Claim;

/// The most of one member the audit reads (an extension module of a large package is tens of
/// megabytes; a member claiming more is refused rather than filling memory).
const MAX_MEMBER: u64 = 1 << 30;

/// A wheel file name's parts, tags expanded (`abi3.abi3t` is two abi tags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WheelName {
    pub name: String,
    pub version: String,
    pub python: Vec<String>,
    pub abi: Vec<String>,
    pub platform: Vec<String>,
}

impl WheelName {
    pub fn parse(file: &str) -> Result<WheelName> {
        let stem = file
            .strip_suffix(".whl")
            .with_context(|| format!("`{file}` is not a .whl"))?;
        let parts: Vec<&str> = stem.split('-').collect();
        let (name, version, rest) = match parts.as_slice() {
            [n, v, p, a, pl] => (n, v, [p, a, pl]),
            [n, v, _build, p, a, pl] => (n, v, [p, a, pl]),
            _ => {
                bail!("`{file}` is not a wheel name (name-version[-build]-python-abi-platform.whl)")
            }
        };
        let split = |s: &str| s.split('.').map(str::to_string).collect::<Vec<_>>();
        let [python, abi, platform] = rest;
        Ok(WheelName {
            name: name.to_string(),
            version: version.to_string(),
            python: split(python),
            abi: split(abi),
            platform: split(platform),
        })
    }

    /// Every `python-abi-platform` triple the name stands for.
    pub fn tags(&self) -> Vec<String> {
        let mut out = Vec::new();
        for p in &self.python {
            for a in &self.abi {
                for pl in &self.platform {
                    out.push(format!("{p}-{a}-{pl}"));
                }
            }
        }
        out
    }

    /// What the tags promise, or `None` when they promise no Stable ABI (a version-specific
    /// or pure-Python wheel: nothing for this audit to check).
    pub fn claim(&self) -> Option<Claim> {
        let abi3 = self.abi.iter().any(|a| a == "abi3");
        let abi3t = self.abi.iter().any(|a| a == "abi3t");
        if !abi3 && !abi3t {
            return None;
        }
        let python = self
            .python
            .iter()
            .filter_map(|p| Version::from_python_tag(p))
            .min()?;
        Some(Claim {
            python,
            abi3,
            abi3t,
        })
    }
}

/// `Tag:` lines of a `WHEEL` file, expanded: some tools (maturin before 1.0) wrote a
/// compressed tag set such as `cp38-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64` there.
pub fn wheel_tags(wheel: &str) -> Vec<String> {
    let mut out = Vec::new();
    for tag in wheel.lines().filter_map(|l| l.strip_prefix("Tag:")) {
        let parts: Vec<&str> = tag.trim().split('-').collect();
        let [python, abi, platform] = parts.as_slice() else {
            out.push(tag.trim().to_string());
            continue;
        };
        for p in python.split('.') {
            for a in abi.split('.') {
                for pl in platform.split('.') {
                    out.push(format!("{p}-{a}-{pl}"));
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// A wheel's contents that the audit needs, in memory (for tests: `read` streams them).
#[cfg(test)]
pub struct Contents {
    /// `WHEEL`'s text, if the wheel has one.
    pub wheel: Option<String>,
    /// Every shared object's path in the wheel and bytes.
    pub shared: Vec<(String, Vec<u8>)>,
}

/// Reads the wheel at `path`: hands each shared object (`is_shared` of its path) to `each` as
/// it is read, one at a time, and returns the `WHEEL` file's text if there is one.
pub fn read(
    path: &Path,
    is_shared: impl Fn(&str) -> bool,
    mut each: impl FnMut(&str, &[u8]),
) -> Result<Option<String>> {
    let file = fs_err::File::open(path)?;
    let mut zip = zip::ZipArchive::new(file)
        .with_context(|| format!("`{}` is not a readable zip archive", path.display()))?;
    let mut wheel = None;
    for i in 0..zip.len() {
        let mut member = zip
            .by_index(i)
            .with_context(|| format!("`{}`: reading member {i}", path.display()))?;
        if member.is_dir() {
            continue;
        }
        let name = String::from_utf8_lossy(member.name_raw()).into_owned();
        let top_wheel = name.ends_with(".dist-info/WHEEL") && name.matches('/').count() == 1;
        if !top_wheel && !is_shared(&name) {
            continue;
        }
        if member.size() > MAX_MEMBER {
            bail!(
                "`{}`: member `{name}` says it is {} bytes, more than the audit reads ({MAX_MEMBER})",
                path.display(),
                member.size()
            );
        }
        let mut bytes = Vec::with_capacity(member.size() as usize);
        (&mut member)
            .take(MAX_MEMBER + 1)
            .read_to_end(&mut bytes)
            .with_context(|| format!("`{}`: reading member `{name}`", path.display()))?;
        if bytes.len() as u64 > MAX_MEMBER {
            bail!(
                "`{}`: member `{name}` is larger than the audit reads ({MAX_MEMBER} bytes)",
                path.display()
            );
        }
        if top_wheel {
            let text = String::from_utf8(bytes)
                .with_context(|| format!("`{}`: `{name}` is not UTF-8", path.display()))?;
            wheel = Some(text);
        } else {
            each(&name, &bytes);
        }
    }
    Ok(wheel)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_expand_to_tags_and_claims() {
        let n = WheelName::parse("cryptography-50.0.2-cp315-abi3.abi3t-manylinux_2_34_x86_64.whl")
            .unwrap();
        assert_eq!(
            n.tags(),
            [
                "cp315-abi3-manylinux_2_34_x86_64",
                "cp315-abi3t-manylinux_2_34_x86_64"
            ]
        );
        let c = n.claim().unwrap();
        assert!(c.abi3 && c.abi3t);
        assert_eq!(c.python, Version::new(3, 15));
        let plain = WheelName::parse("x-1-cp315-cp315t-linux_x86_64.whl").unwrap();
        assert_eq!(plain.claim(), None);
        let abi3 = WheelName::parse("x-1-1build-cp38-abi3-win_amd64.whl").unwrap();
        assert_eq!(abi3.claim().unwrap().python, Version::new(3, 8));
        assert!(WheelName::parse("x-1.tar.gz").is_err());
        assert!(WheelName::parse("x-cp38-abi3.whl").is_err());
    }
}
