//! The `upstream:` and `base:` values of `stack.yaml`: how they deserialize, and the rules
//! for URLs, package names and ids.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use super::source::{Pin, Upstream};

impl<'de> Deserialize<'de> for Upstream {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Upstream;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a git URL or `pypi: <name>`")
            }
            fn visit_str<E: de::Error>(self, url: &str) -> Result<Upstream, E> {
                check_git_url(url).map_err(E::custom)?;
                Ok(Upstream::Git(url.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Upstream, A::Error> {
                let mut name: Option<String> = None;
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "pypi" if name.is_none() => name = Some(map.next_value()?),
                        "pypi" => return Err(de::Error::duplicate_field("pypi")),
                        other => return Err(de::Error::unknown_field(other, &["pypi"])),
                    }
                }
                let name = name.ok_or_else(|| de::Error::missing_field("pypi"))?;
                check_pypi_name(&name).map_err(de::Error::custom)?;
                Ok(Upstream::Pypi(name))
            }
        }
        d.deserialize_any(V)
    }
}

const NUMERIC_BASE: &str = "YAML reads this commit id as a number (it is all digits, or digits and one `e`); quote it: `base: \"<id>\"`";

/// Whether YAML would read a hex id written bare as a number rather than a string: only
/// digits, or digits and an `e` (an exponent). Such ids are quoted when written.
pub fn reads_as_number(id: &str) -> bool {
    id.bytes().all(|b| b.is_ascii_digit() || b == b'e')
        && id.bytes().filter(|&b| b == b'e').count() <= 1
}

impl<'de> Deserialize<'de> for Pin {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Pin;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a full 40-hex commit id or `{version, sha256}`")
            }
            fn visit_str<E: de::Error>(self, id: &str) -> Result<Pin, E> {
                if !is_full_hex(id, 40) {
                    return Err(E::custom(format!(
                        "`{id}` is not a full commit id (40 lower-case hex digits)"
                    )));
                }
                Ok(Pin::Commit(id.to_string()))
            }
            // YAML reads an all-digit id as a number, and a 40-digit one does not even fit
            // an integer (it arrives as a rounded float), so the text is gone: say how to
            // write it instead of guessing. `with_base` quotes such ids when it writes one.
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Pin, E> {
                Err(E::custom(NUMERIC_BASE))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Pin, E> {
                Err(E::custom(NUMERIC_BASE))
            }
            fn visit_u128<E: de::Error>(self, _: u128) -> Result<Pin, E> {
                Err(E::custom(NUMERIC_BASE))
            }
            fn visit_i128<E: de::Error>(self, _: i128) -> Result<Pin, E> {
                Err(E::custom(NUMERIC_BASE))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Pin, E> {
                Err(E::custom(NUMERIC_BASE))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Pin, A::Error> {
                let (mut version, mut sha256) = (None::<String>, None::<String>);
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "version" if version.is_none() => version = Some(map.next_value()?),
                        "sha256" if sha256.is_none() => sha256 = Some(map.next_value()?),
                        "version" | "sha256" => return Err(de::Error::custom("duplicate key")),
                        other => {
                            return Err(de::Error::unknown_field(other, &["version", "sha256"]));
                        }
                    }
                }
                let version = version.ok_or_else(|| de::Error::missing_field("version"))?;
                let sha256 = sha256.ok_or_else(|| de::Error::missing_field("sha256"))?;
                if !is_full_hex(&sha256, 64) {
                    return Err(de::Error::custom(format!(
                        "sha256 `{sha256}` is not 64 lower-case hex digits"
                    )));
                }
                if version.is_empty()
                    || !version
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._+!-".contains(&b))
                {
                    return Err(de::Error::custom(format!("`{version}` is not a version")));
                }
                Ok(Pin::Sdist { version, sha256 })
            }
        }
        d.deserialize_any(V)
    }
}

pub fn is_full_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Refuses URLs git would hand to a command-running transport, and other forms we do not
/// want in a shared manifest. Local paths are not URLs here: use `file://` for those.
pub fn check_git_url(url: &str) -> Result<(), String> {
    if url.contains("::") {
        return Err(format!(
            "upstream `{url}` uses git's `<transport>::` syntax (such as `ext::`), which can run commands; use an https, ssh, git or file URL"
        ));
    }
    if url.ends_with(".git") || url.ends_with(".git/") {
        return Err(format!("upstream `{url}` must not end in `.git`"));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("upstream `{url}` contains whitespace"));
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(format!(
            "upstream `{url}` is not a URL; expected https://, http://, ssh://, git:// or file://"
        ));
    };
    if !matches!(scheme, "https" | "http" | "ssh" | "git" | "file") {
        return Err(format!(
            "upstream `{url}` uses transport `{scheme}`; only https, http, ssh, git and file are allowed"
        ));
    }
    if rest.is_empty() || rest.starts_with('-') {
        return Err(format!("upstream `{url}` has no host or path"));
    }
    Ok(())
}

fn check_pypi_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && name.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(format!("`{name}` is not a valid package name"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_dangerous_or_odd_urls() {
        for (url, want) in [
            ("ext::sh -c touch% /tmp/pwned", "can run commands"),
            ("fd::17", "can run commands"),
            ("https://github.com/a/b.git", "must not end in `.git`"),
            ("/srv/git/cpython", "is not a URL"),
            ("gopher://example.org/x", "only https"),
            ("ssh://-oProxyCommand=x", "no host"),
        ] {
            let err = check_git_url(url).unwrap_err();
            assert!(err.contains(want), "{url}: {err}");
        }
        for url in [
            "https://github.com/python/cpython",
            "file:///tmp/up",
            "ssh://git@host/x",
        ] {
            check_git_url(url).unwrap();
        }
    }
}
