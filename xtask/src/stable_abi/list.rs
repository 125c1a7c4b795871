//! CPython's own list of the Stable ABI, `Misc/stable_abi.toml`, read as data: which names are
//! exported symbols (`function`, `data`), since which version, and under which condition.
//! Pure: text in, a lookup table out. The file is CPython's; we read it, we never copy it.

use std::collections::BTreeMap;
use std::fmt;

use anyhow::{Context, Result, bail};
use serde::Serialize;

/// A CPython minor version, `3.15`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
}

impl Version {
    pub const fn new(major: u32, minor: u32) -> Version {
        Version { major, minor }
    }

    /// `3.15` as written in `added = '3.15'`.
    pub fn parse(text: &str) -> Option<Version> {
        let (major, minor) = text.split_once('.')?;
        let num = |s: &str| {
            (!s.is_empty() && s.len() <= 3 && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse().ok())
                .flatten()
        };
        Some(Version::new(num(major)?, num(minor)?))
    }

    /// A wheel's CPython 3 tag, `cp315` (or `cp3` with no minor, meaning 3.0); `None` for
    /// anything else (`cp2`, `cp0315`, `cp3999999`).
    pub fn from_python_tag(tag: &str) -> Option<Version> {
        let minor = tag.strip_prefix("cp3")?;
        if minor.len() > 3
            || !minor.bytes().all(|b| b.is_ascii_digit())
            || (minor.starts_with('0') && minor.len() > 1)
        {
            return None;
        }
        Some(Version::new(
            3,
            if minor.is_empty() {
                0
            } else {
                minor.parse().ok()?
            },
        ))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// What a name in the list is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Function,
    Data,
    /// Anything that is not an exported symbol: struct, const, macro, typedef, feature_macro.
    Other(&'static str),
}

/// One `[function.X]` or `[data.X]` (or another kind, kept so a violation can say "X is a
/// macro").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub kind: Kind,
    pub added: Version,
    /// Part of the ABI but not of the Limited API (called by public macros).
    pub abi_only: bool,
    /// Only exported where this feature macro is defined (`MS_WINDOWS`, `HAVE_FORK`, ...).
    pub ifdef: Option<String>,
}

/// The parsed list.
#[derive(Debug, Clone, Default)]
pub struct StableAbi {
    pub items: BTreeMap<String, Item>,
    /// The newest `added` in the file: the CPython version the list describes.
    pub newest: Option<Version>,
}

const KINDS: [&str; 7] = [
    "function",
    "data",
    "struct",
    "const",
    "macro",
    "typedef",
    "feature_macro",
];

impl StableAbi {
    /// Parses the text of `Misc/stable_abi.toml`; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<StableAbi> {
        let table: toml::Table =
            toml::from_str(text).with_context(|| format!("parsing `{origin}` as TOML"))?;
        let mut abi = StableAbi::default();
        for (kind_name, entries) in &table {
            let Some(&kind_name) = KINDS.iter().find(|k| *k == kind_name) else {
                // A kind this reader does not know: not a symbol, so it cannot be used wrongly
                // as one; a newer file may add kinds.
                continue;
            };
            let kind = match kind_name {
                "function" => Kind::Function,
                "data" => Kind::Data,
                other => Kind::Other(other),
            };
            let entries = entries
                .as_table()
                .with_context(|| format!("`{origin}`: `{kind_name}` is not a table of items"))?;
            for (name, fields) in entries {
                let item = parse_item(kind, fields)
                    .with_context(|| format!("`{origin}`: item `[{kind_name}.{name}]`"))?;
                if let Some(item) = item {
                    if matches!(kind, Kind::Function | Kind::Data) {
                        abi.newest = abi.newest.max(Some(item.added));
                    }
                    // A name listed as a symbol wins over the same name as a macro.
                    let keep_old = abi
                        .items
                        .get(name)
                        .is_some_and(|old| matches!(old.kind, Kind::Function | Kind::Data));
                    if !keep_old {
                        abi.items.insert(name.clone(), item);
                    }
                }
            }
        }
        if !abi
            .items
            .values()
            .any(|i| matches!(i.kind, Kind::Function | Kind::Data))
        {
            bail!(
                "`{origin}` lists no `function` or `data` items: is it CPython's Misc/stable_abi.toml?"
            );
        }
        Ok(abi)
    }

    /// Reads and parses the list at `path`.
    pub fn load(path: &std::path::Path) -> Result<StableAbi> {
        // CPython's file is about 70 KB; a file a thousand times that is not it.
        const MAX: u64 = 64 << 20;
        let size = fs_err::metadata(path)?.len();
        if size > MAX {
            bail!(
                "`{}` is {size} bytes: too large to be CPython's Misc/stable_abi.toml",
                path.display()
            );
        }
        let text = fs_err::read_to_string(path).context("reading the Stable ABI list")?;
        StableAbi::parse(&text, &path.display().to_string())
    }

    pub fn get(&self, symbol: &str) -> Option<&Item> {
        self.items.get(symbol)
    }

    /// How many exported symbols (functions and data) the list has.
    pub fn symbols(&self) -> usize {
        self.items
            .values()
            .filter(|i| matches!(i.kind, Kind::Function | Kind::Data))
            .count()
    }
}

/// One item's fields; `None` for kinds without `added` (feature macros).
fn parse_item(kind: Kind, fields: &toml::Value) -> Result<Option<Item>> {
    let fields = fields.as_table().context("not a table")?;
    let added = match fields.get("added") {
        Some(v) => {
            let text = v.as_str().context("`added` is not a string")?;
            Version::parse(text)
                .with_context(|| format!("`added = '{text}'` is not a version like '3.15'"))?
        }
        None if matches!(kind, Kind::Function | Kind::Data) => bail!("has no `added` version"),
        None => return Ok(None),
    };
    let abi_only = match fields.get("abi_only") {
        Some(v) => v.as_bool().context("`abi_only` is not true or false")?,
        None => false,
    };
    let ifdef = match fields.get("ifdef") {
        Some(v) => Some(v.as_str().context("`ifdef` is not a string")?.to_string()),
        None => None,
    };
    Ok(Some(Item {
        kind,
        added,
        abi_only,
        ifdef,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &str = r#"
[feature_macro.MS_WINDOWS]
    doc = 'on Windows'
    windows = true
[struct.PyObject]
    added = '3.2'
    members = ['ob_refcnt', 'ob_type']
    struct_abi_kind = 'members'
[function.PyLong_FromLong]
    added = '3.2'
[function._Py_Dealloc]
    added = '3.2'
    abi_only = true
[data.PyExc_TypeError]
    added = '3.2'
[function.PyErr_SetFromWindowsErr]
    added = '3.7'
    ifdef = 'MS_WINDOWS'
[function.PyModule_FromSlotsAndSpec]
    added = '3.15'
[macro.Py_INCREF]
    added = '3.2'
"#;

    #[test]
    fn reads_kinds_versions_and_conditions() {
        let abi = StableAbi::parse(LIST, "stable_abi.toml").unwrap();
        assert_eq!(abi.symbols(), 5);
        assert_eq!(abi.newest, Some(Version::new(3, 15)));
        let dealloc = abi.get("_Py_Dealloc").unwrap();
        assert!(dealloc.abi_only);
        assert_eq!(dealloc.kind, Kind::Function);
        assert_eq!(abi.get("PyExc_TypeError").unwrap().kind, Kind::Data);
        assert_eq!(
            abi.get("PyErr_SetFromWindowsErr").unwrap().ifdef.as_deref(),
            Some("MS_WINDOWS")
        );
        assert_eq!(abi.get("Py_INCREF").unwrap().kind, Kind::Other("macro"));
        assert!(abi.get("MS_WINDOWS").is_none());
    }

    #[test]
    fn bad_lists_are_refused_with_the_item_named() {
        let err = StableAbi::parse("[function.PyFoo]\nadded = 'three'\n", "x.toml").unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("`[function.PyFoo]`"), "{msg}");
        assert!(msg.contains("'three'"), "{msg}");
        let err = StableAbi::parse("[function.PyFoo]\n", "x.toml").unwrap_err();
        assert!(format!("{err:#}").contains("no `added`"));
        let err = StableAbi::parse("not toml [", "x.toml").unwrap_err();
        assert!(format!("{err:#}").contains("parsing `x.toml`"));
        let err = StableAbi::parse("[const.X]\nadded = '3.2'\n", "x.toml").unwrap_err();
        assert!(format!("{err:#}").contains("lists no `function`"));
    }

    #[test]
    fn python_tags_are_versions() {
        assert_eq!(Version::from_python_tag("cp315"), Some(Version::new(3, 15)));
        assert_eq!(Version::from_python_tag("cp38"), Some(Version::new(3, 8)));
        assert_eq!(Version::from_python_tag("cp3"), Some(Version::new(3, 0)));
        assert_eq!(Version::from_python_tag("py3"), None);
        assert_eq!(Version::from_python_tag("cp3x"), None);
        assert_eq!(Version::from_python_tag("cp"), None);
        for bad in [
            "cp2",
            "cp40",
            "cp0315",
            "cp3999999999999999999",
            "cp3\u{ff11}\u{ff15}",
        ] {
            assert_eq!(Version::from_python_tag(bad), None, "{bad}");
        }
        assert_eq!(Version::parse("+3.+16"), None);
        assert_eq!(Version::parse("4294967295.4294967295"), None);
    }
}
