//! Wheel checks for the abi3t experiment: the file name's tags, every `Tag:` line of `WHEEL`,
//! and the extension modules' suffix. Pure, over a wheel's file list and `WHEEL` text.

use anyhow::Result;

/// The tags a wheel file name carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WheelName {
    pub name: String,
    pub version: String,
    pub python: String,
    pub abi: String,
    pub platform: String,
}

/// The file name's parts, tag sets as written (`abi3.abi3t`); parsed by the audit's reader,
/// the one place that knows the wheel name format.
pub fn parse_name(file: &str) -> Result<WheelName> {
    let n = crate::stable_abi::wheel::WheelName::parse(file)?;
    Ok(WheelName {
        python: n.python.join("."),
        abi: n.abi.join("."),
        platform: n.platform.join("."),
        name: n.name,
        version: n.version,
    })
}

/// What the experiment requires of a wheel built for the Stable ABI on CPython `python`
/// (`cp315`): `<python>-abi3.abi3t-<platform>` in the name, a `Tag:` line for each of abi3 and
/// abi3t on every platform, and only abi3t extension modules (`.abi3t.so`, or the
/// multiarch `.abi3t-<multiarch>.so` that every CPython 3.15+ on Linux also loads, gh-122931;
/// whether each claimed interpreter loads the name is the audit's `suffix` rule). Returns the
/// problems.
pub fn check(file: &str, files: &[String], wheel_text: &str, python: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let name = match parse_name(file) {
        Ok(n) => n,
        Err(e) => return vec![e.to_string()],
    };
    if name.python != python {
        problems.push(format!(
            "file name has python tag `{}`, expected `{python}`",
            name.python
        ));
    }
    if name.abi != "abi3.abi3t" {
        problems.push(format!(
            "file name has abi tag `{}`, expected `abi3.abi3t`",
            name.abi
        ));
    }
    let tags: Vec<&str> = wheel_text
        .lines()
        .filter_map(|l| l.strip_prefix("Tag:"))
        .map(str::trim)
        .collect();
    let mut wanted = Vec::new();
    for platform in name.platform.split('.') {
        for abi in ["abi3", "abi3t"] {
            wanted.push(format!("{python}-{abi}-{platform}"));
        }
    }
    for w in &wanted {
        if !tags.contains(&w.as_str()) {
            problems.push(format!(
                "WHEEL has no `Tag: {w}` (it has: {})",
                tags.join(", ")
            ));
        }
    }
    for t in &tags {
        if !wanted.iter().any(|w| w == t) {
            problems.push(format!("WHEEL has an unexpected `Tag: {t}`"));
        }
    }
    let modules: Vec<&String> = files
        .iter()
        .filter(|f| f.ends_with(".so") || f.ends_with(".pyd"))
        .collect();
    if modules.is_empty() {
        problems.push("the wheel has no extension module".into());
    }
    for m in modules {
        if !(abi3t_module(m) || m.ends_with(".pyd")) {
            problems.push(format!(
                "extension module `{m}` does not end in `.abi3t.so` (or `.abi3t-<multiarch>.so`)"
            ));
        }
    }
    problems
}

/// Whether a module's file name is an abi3t one: `.abi3t.so` or `.abi3t-<multiarch>.so`.
fn abi3t_module(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    if name.ends_with(".abi3t.so") {
        return true;
    }
    let Some(i) = name.rfind(".abi3t-") else {
        return false;
    };
    let arch = name[i + ".abi3t-".len()..].strip_suffix(".so");
    arch.is_some_and(|a| !a.is_empty() && !a.contains('.'))
}

/// A small Python program that prints a wheel's file list and its `WHEEL` text as JSON.
pub const LIST_WHEEL_PY: &str = r#"
import json, sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
names = z.namelist()
wheel = [n for n in names if n.endswith('.dist-info/WHEEL')]
print(json.dumps({"files": names, "wheel": z.read(wheel[0]).decode() if wheel else ""}))
"#;

#[derive(Debug, serde::Deserialize)]
pub struct Listing {
    pub files: Vec<String>,
    pub wheel: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD_WHEEL: &str = "Wheel-Version: 1.0\nGenerator: maturin (1.14.1)\nRoot-Is-Purelib: false\nTag: cp315-abi3-manylinux_2_34_x86_64\nTag: cp315-abi3t-manylinux_2_34_x86_64\n";

    fn files(so: &str) -> Vec<String> {
        vec![
            "cryptography/__init__.py".into(),
            format!("cryptography/hazmat/bindings/_rust{so}"),
        ]
    }

    #[test]
    fn a_good_abi3t_wheel_passes() {
        let f = "cryptography-50.0.2-cp315-abi3.abi3t-manylinux_2_34_x86_64.whl";
        assert_eq!(
            check(f, &files(".abi3t.so"), GOOD_WHEEL, "cp315"),
            Vec::<String>::new()
        );
    }

    #[test]
    fn each_wrong_thing_is_named() {
        let f = "cryptography-50.0.2-cp315-cp315t-manylinux_2_34_x86_64.whl";
        let p = check(
            f,
            &files(".cpython-315t-x86_64-linux-gnu.so"),
            "Tag: cp315-cp315t-manylinux_2_34_x86_64\n",
            "cp315",
        );
        assert!(p.iter().any(|x| x.contains("abi tag `cp315t`")), "{p:?}");
        assert!(
            p.iter()
                .any(|x| x.contains("no `Tag: cp315-abi3t-manylinux_2_34_x86_64`")),
            "{p:?}"
        );
        assert!(
            p.iter()
                .any(|x| x.contains("unexpected `Tag: cp315-cp315t")),
            "{p:?}"
        );
        assert!(
            p.iter().any(|x| x.contains("does not end in `.abi3t.so`")),
            "{p:?}"
        );
        let only_abi3 = "Tag: cp315-abi3-manylinux_2_34_x86_64\n";
        let f = "cryptography-50.0.2-cp315-abi3.abi3t-manylinux_2_34_x86_64.whl";
        let p = check(f, &files(".abi3t.so"), only_abi3, "cp315");
        assert_eq!(
            p,
            vec![
                "WHEEL has no `Tag: cp315-abi3t-manylinux_2_34_x86_64` (it has: cp315-abi3-manylinux_2_34_x86_64)"
            ]
        );
    }

    #[test]
    fn compressed_platforms_need_every_tag() {
        let f = "x-1-cp315-abi3.abi3t-manylinux_2_17_x86_64.manylinux2014_x86_64.whl";
        let wheel = "Tag: cp315-abi3-manylinux_2_17_x86_64\nTag: cp315-abi3t-manylinux_2_17_x86_64\nTag: cp315-abi3-manylinux2014_x86_64\n";
        let p = check(f, &["x/_x.abi3t.so".to_string()], wheel, "cp315");
        assert_eq!(
            p,
            vec![
                "WHEEL has no `Tag: cp315-abi3t-manylinux2014_x86_64` (it has: cp315-abi3-manylinux_2_17_x86_64, cp315-abi3t-manylinux_2_17_x86_64, cp315-abi3-manylinux2014_x86_64)"
            ]
        );
    }

    /// Builds real wheel files with the host's Python `zipfile`, reads them back the way the
    /// pipeline does, and checks them.
    #[test]
    fn abi3t_module_names() {
        for ok in [
            "a/_x.abi3t.so",
            "_ffi.abi3t-x86_64-linux-gnu.so",
            "x.abi3t-arm64-darwin.so",
        ] {
            assert!(abi3t_module(ok), "{ok}");
        }
        for bad in [
            "_x.abi3.so",
            "_x.cpython-315t-x86_64-linux-gnu.so",
            "_x.abi3-x86_64-linux-gnu.so",
            "_x.abi3t-.so",
            "_x.abi3t-x86_64.linux.so",
            "abi3t-x/_x.so",
        ] {
            assert!(!abi3t_module(bad), "{bad}");
        }
    }

    #[test]
    fn checks_wheels_built_here() {
        let sh = xshell::Shell::new().unwrap();
        let dir = std::env::temp_dir().join(format!("xtask-wheels-{}", std::process::id()));
        fs_err::create_dir_all(&dir).unwrap();
        let make = r#"
import sys, zipfile
path, suffix, tags = sys.argv[1], sys.argv[2], sys.argv[3:]
with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("demo/__init__.py", "")
    z.writestr("demo/_demo" + suffix, b"\x7fELF")
    z.writestr("demo-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\n" + "".join("Tag: %s\n" % t for t in tags))
"#;
        let cases = [
            (
                "demo-1.0-cp315-abi3.abi3t-linux_x86_64.whl",
                ".abi3t.so",
                vec!["cp315-abi3-linux_x86_64", "cp315-abi3t-linux_x86_64"],
                0,
            ),
            (
                "demo-1.0-cp315-abi3-linux_x86_64.whl",
                ".abi3.so",
                vec!["cp315-abi3-linux_x86_64"],
                3,
            ),
        ];
        for (name, suffix, tags, problems) in cases {
            let path = dir.join(name);
            xshell::cmd!(sh, "python3 -c {make} {path} {suffix} {tags...}")
                .run()
                .unwrap();
            let json = xshell::cmd!(sh, "python3 -c {LIST_WHEEL_PY} {path}")
                .read()
                .unwrap();
            let listing: Listing = serde_json::from_str(&json).unwrap();
            let found = check(name, &listing.files, &listing.wheel, "cp315");
            assert_eq!(found.len(), problems, "{name}: {found:?}");
        }
        fs_err::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn names() {
        let n = parse_name("pkg-1.0-1-cp315-abi3.abi3t-linux_x86_64.whl").unwrap();
        assert_eq!(
            (n.python.as_str(), n.abi.as_str(), n.platform.as_str()),
            ("cp315", "abi3.abi3t", "linux_x86_64")
        );
        assert!(parse_name("pkg-1.0.whl").is_err());
    }
}
