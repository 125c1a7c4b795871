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

/// The most `WHEEL` text the audit reads (real ones are a few hundred bytes).
const MAX_WHEEL: u64 = 1 << 20;

/// The most values one part of a tag may list (`manylinux_2_17_x86_64.manylinux2014_x86_64`
/// is two), and the most tags a wheel may expand to: a compressed tag set is a product, and
/// a hostile one would otherwise take gigabytes.
const MAX_TAG_PARTS: usize = 32;
const MAX_TAGS: usize = 1024;

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
        if [python, abi, platform]
            .iter()
            .any(|p| p.split('.').count() > MAX_TAG_PARTS)
        {
            bail!("`{file}` names more than {MAX_TAG_PARTS} values in one tag");
        }
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
    /// or pure-Python wheel: nothing for this audit to check). Tagged abi3 or abi3t without a
    /// `cp3XY` tag this can read is an error, never a skip.
    pub fn claim(&self) -> Result<Option<Claim>> {
        let abi3 = self.abi.iter().any(|a| a == "abi3");
        let abi3t = self.abi.iter().any(|a| a == "abi3t");
        if !abi3 && !abi3t {
            return Ok(None);
        }
        let python = self
            .python
            .iter()
            .filter_map(|p| Version::from_python_tag(p))
            .min()
            .with_context(|| {
                format!(
                    "tagged for the Stable ABI but its python tags ({}) name no CPython 3 version like `cp315`",
                    self.python.join(".")
                )
            })?;
        Ok(Some(Claim {
            python,
            abi3,
            abi3t,
        }))
    }

    /// The dist-info folder the wheel's own metadata must be in (`name-version.dist-info`),
    /// compared as the wheel spec normalizes names: case-insensitive, `-` and `.` as `_`.
    pub fn is_own_dist_info(&self, folder: &str) -> bool {
        let norm = |s: &str| s.to_ascii_lowercase().replace(['-', '.'], "_");
        folder
            .strip_suffix(".dist-info")
            .and_then(|f| f.rsplit_once('-'))
            .is_some_and(|(n, v)| norm(n) == norm(&self.name) && norm(v) == norm(&self.version))
    }
}

/// `Tag:` lines of a `WHEEL` file, expanded: some tools (maturin before 1.0) wrote a
/// compressed tag set such as `cp38-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64` there.
pub fn wheel_tags(wheel: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    // Email-header style: the key is case-insensitive.
    let tags = wheel.lines().filter_map(|l| {
        let (key, value) = l.split_once(':')?;
        key.trim().eq_ignore_ascii_case("tag").then_some(value)
    });
    for tag in tags {
        let parts: Vec<&str> = tag.trim().split('-').collect();
        let [python, abi, platform] = parts.as_slice() else {
            bail!(
                "WHEEL has a `Tag:` line that is not python-abi-platform: `{}`",
                tag.trim().escape_debug()
            );
        };
        if [python, abi, platform]
            .iter()
            .any(|p| p.split('.').count() > MAX_TAG_PARTS)
        {
            bail!("WHEEL has a `Tag:` line with more than {MAX_TAG_PARTS} values in one part");
        }
        for p in python.split('.') {
            for a in abi.split('.') {
                for pl in platform.split('.') {
                    out.push(format!("{p}-{a}-{pl}"));
                }
            }
        }
        if out.len() > MAX_TAGS {
            bail!("WHEEL's `Tag:` lines name more than {MAX_TAGS} tags");
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
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
    name: &WheelName,
    is_shared: impl Fn(&str) -> bool,
    mut each: impl FnMut(&str, &[u8]),
) -> Result<Option<String>> {
    let file = fs_err::File::open(path)?;
    let mut zip = zip::ZipArchive::new(file)
        .with_context(|| format!("`{}` is not a readable zip archive", path.display()))?;
    // Two members of one name: readers disagree on which one counts (the zip crate and
    // Python's `zipfile` keep the last), so another tool could see another `WHEEL` or module.
    if zip.has_duplicate_names() {
        bail!(
            "`{}` holds two members of the same name: which one an installer reads is not certain",
            path.display()
        );
    }
    let mut wheel = None;
    for i in 0..zip.len() {
        let mut member = zip
            .by_index(i)
            .with_context(|| format!("`{}`: reading member {i}", path.display()))?;
        if member.is_dir() {
            continue;
        }
        let member_name = String::from_utf8_lossy(member.name_raw()).into_owned();
        let top_wheel = member_name
            .strip_suffix("/WHEEL")
            .is_some_and(|folder| !folder.contains('/') && name.is_own_dist_info(folder));
        let name = member_name;
        if !top_wheel && !is_shared(&name) {
            continue;
        }
        let limit = if top_wheel { MAX_WHEEL } else { MAX_MEMBER };
        if member.size() > limit {
            bail!(
                "`{}`: member `{}` says it is {} bytes, more than the audit reads ({limit})",
                path.display(),
                name.escape_debug(),
                member.size()
            );
        }
        let mut bytes = Vec::with_capacity(member.size() as usize);
        (&mut member)
            .take(limit + 1)
            .read_to_end(&mut bytes)
            .with_context(|| format!("`{}`: reading member `{name}`", path.display()))?;
        if bytes.len() as u64 > limit {
            bail!(
                "`{}`: member `{}` is larger than the audit reads ({limit} bytes)",
                path.display(),
                name.escape_debug()
            );
        }
        if top_wheel {
            let text = String::from_utf8(bytes)
                .with_context(|| format!("`{}`: `{name}` is not UTF-8", path.display()))?;
            if wheel.is_some() {
                bail!(
                    "`{}` holds `{name}` twice: which one is its metadata?",
                    path.display()
                );
            }
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
    fn wheel_tag_lines_are_expanded_case_insensitively_and_bounded() {
        let tags =
            wheel_tags("Wheel-Version: 1.0\ntag: cp38-abi3-a.b\nTag: cp38-abi3-a\n").unwrap();
        assert_eq!(tags, ["cp38-abi3-a", "cp38-abi3-b"]);
        let parts = vec!["p"; 30].join(".");
        let bomb = format!("Tag: {parts}-{parts}-{parts}\n");
        assert!(format!("{:#}", wheel_tags(&bomb).unwrap_err()).contains("more than 1024 tags"));
        assert!(wheel_tags("Tag: nonsense\n").is_err());
    }

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
        let c = n.claim().unwrap().unwrap();
        assert!(c.abi3 && c.abi3t);
        assert_eq!(c.python, Version::new(3, 15));
        let plain = WheelName::parse("x-1-cp315-cp315t-linux_x86_64.whl").unwrap();
        assert_eq!(plain.claim().unwrap(), None);
        let abi3 = WheelName::parse("x-1-1build-cp38-abi3-win_amd64.whl").unwrap();
        assert_eq!(abi3.claim().unwrap().unwrap().python, Version::new(3, 8));
        assert!(WheelName::parse("x-1.tar.gz").is_err());
        // Tagged abi3 with a python tag that cannot be read: an error, never a skip.
        let odd =
            WheelName::parse("x-1-cp3999999999999999999-abi3.abi3t-linux_x86_64.whl").unwrap();
        assert!(format!("{:#}", odd.claim().unwrap_err()).contains("name no CPython 3 version"));
        let many = format!("x-1-cp315-abi3-{}.whl", vec!["linux_x86_64"; 40].join("."));
        assert!(WheelName::parse(&many).is_err());
        assert!(n.is_own_dist_info("cryptography-50.0.2.dist-info"));
        assert!(n.is_own_dist_info("Cryptography-50.0.2.dist-info"));
        assert!(!n.is_own_dist_info("other-9.dist-info"));
        assert!(!n.is_own_dist_info(".dist-info"));
        assert!(WheelName::parse("x-cp38-abi3.whl").is_err());
    }
}
