//! The Stable ABI audit, shared by `cargo xtask audit` and build-all's wheel step: does every
//! shared object in a wheel use only the Stable ABI (abi3, abi3t) its tags claim? CPython's
//! `Misc/stable_abi.toml` (`list`), the binaries (`binary`), the wheel (`wheel`) and the rules
//! (`rules`). docs/audit.md explains each rule; the JSON form is documented there too.

pub mod binary;
pub mod list;
pub mod rules;
pub mod wheel;

use std::path::Path;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use binary::Format;
use list::StableAbi;
use rules::{Claim, Role, Rule, Violation};

/// A violation a target's stack accepts, with the reason a reader of the report needs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Waiver {
    /// The rule's name (`module-def`, `refcount`, `symbols`, ...).
    pub rule: String,
    /// Only this symbol (or library, or suffix); every violation of the rule without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symbol: Option<String>,
    pub reason: String,
}

impl Waiver {
    /// Refuses a waiver naming no rule the audit has.
    pub fn check(&self) -> Result<()> {
        if Rule::parse(&self.rule).is_none() {
            let names: Vec<&str> = Rule::ALL.iter().map(|r| r.as_str()).collect();
            anyhow::bail!(
                "audit waiver names rule `{}`; the rules are {}",
                self.rule,
                names.join(", ")
            );
        }
        if self.reason.trim().is_empty() {
            anyhow::bail!("audit waiver of `{}` gives no reason", self.rule);
        }
        Ok(())
    }

    fn covers(&self, v: &Violation) -> bool {
        Rule::parse(&self.rule) == Some(v.rule)
            && self
                .symbol
                .as_ref()
                .is_none_or(|s| v.symbol.as_deref() == Some(s.as_str()))
    }
}

/// A violation as reported: where, what, and whether the target's stack waived it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The module's path in the wheel (empty for a wheel-level finding).
    pub module: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    #[serde(flatten)]
    pub violation: Violation,
    /// The waiver's reason, when a waiver covers it (then it does not fail the wheel).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waived: Option<String>,
}

/// One shared object of a wheel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModuleAudit {
    pub path: String,
    pub role: Role,
    /// `None` when the file could not be read as a binary (then there is a finding).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<Format>,
    pub arches: Vec<String>,
    /// C-API imports checked against the list (summed over architectures).
    pub symbols_checked: usize,
    /// Rules that applied and passed on every architecture.
    pub rules_passed: Vec<Rule>,
    /// The flags of each `PyABIInfo` found (0x7: stable, free-threading agnostic).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub abi_info_flags: Vec<u16>,
}

/// The verdict on one wheel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Every rule passed (waived findings allowed).
    Clean,
    /// At least one finding is not waived.
    Violations,
    /// The tags claim no Stable ABI: nothing to audit.
    Skipped,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WheelAudit {
    pub wheel: String,
    pub verdict: Verdict,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claim: Option<Claim>,
    pub tags: Vec<String>,
    pub modules: Vec<ModuleAudit>,
    pub findings: Vec<Finding>,
}

impl WheelAudit {
    /// Findings no waiver covers.
    pub fn failing(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.waived.is_none())
    }

    /// One line per failing finding: `wheel: module [arch]: symbol: reason (rule)`. Names
    /// from the archive are escaped, so a newline or terminal escape in a member's name
    /// cannot forge a line of the report.
    pub fn lines(&self) -> Vec<String> {
        self.failing()
            .map(|f| {
                let mut s = format!("{}: ", shown(&self.wheel));
                if !f.module.is_empty() {
                    s.push_str(&shown(&f.module));
                    if let Some(a) = &f.arch {
                        s.push_str(&format!(" [{a}]"));
                    }
                    s.push_str(": ");
                }
                if let Some(sym) = &f.violation.symbol {
                    s.push_str(&format!("`{}`: ", shown(sym)));
                }
                s.push_str(&format!(
                    "{} ({})",
                    shown(&f.violation.reason),
                    f.violation.rule.as_str()
                ));
                s
            })
            .collect()
    }
}

/// Text from an archive, for a line of output: control characters (newlines, terminal
/// escapes, NUL) written as `\u{..}`, so no name can forge or colour a line.
pub fn shown(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                format!("\\u{{{:x}}}", c as u32)
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Audits the wheel file at `path`. A wheel that cannot be read at all is an error; a module
/// that cannot be read is a finding of that wheel.
pub fn audit_wheel(path: &Path, abi: &StableAbi, waivers: &[Waiver]) -> Result<WheelAudit> {
    let file = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string();
    let name = wheel::WheelName::parse(&file)?;
    let tags = name.tags();
    let Some(claim) = name.claim()? else {
        return Ok(WheelAudit {
            wheel: file,
            verdict: Verdict::Skipped,
            claim: None,
            tags,
            modules: Vec::new(),
            findings: Vec::new(),
        });
    };
    // Each module is judged as it is read, so memory holds one at a time.
    let mut judged = Vec::new();
    let wheel_text = wheel::read(
        path,
        &name,
        |m| rules::classify(m).is_some(),
        |m, bytes| judged.extend(audit_module(claim, m, bytes, abi)),
    )?;
    Ok(finish(
        file,
        tags,
        claim,
        wheel_text.as_deref(),
        judged,
        waivers,
    ))
}

/// A violation where it was found: module path (empty for the wheel) and architecture.
type Found = (String, Option<String>, Violation);

/// Judges one shared object of a wheel; `None` for a member that is not one.
fn audit_module(
    claim: Claim,
    path: &str,
    bytes: &[u8],
    abi: &StableAbi,
) -> Option<(ModuleAudit, Vec<Found>)> {
    let path = path.to_string();
    let mut found: Vec<Found> = Vec::new();
    let (role, name, suffix) = rules::classify(&path)?;
    let mut audit = ModuleAudit {
        path: path.clone(),
        role,
        format: None,
        arches: Vec::new(),
        symbols_checked: 0,
        rules_passed: Vec::new(),
        abi_info_flags: Vec::new(),
    };
    match binary::read(bytes) {
        Err(e) => found.push((
            path.clone(),
            None,
            Violation {
                rule: Rule::Symbols,
                symbol: None,
                reason: format!("cannot be read: {e:#}"),
            },
        )),
        Ok(binaries) => {
            let mut passed: Option<Vec<Rule>> = None;
            let many = binaries.len() > 1;
            // Named like a module but neither exporting an init nor using the C API: a
            // library loaded with ctypes or cffi.
            if role == Role::Extension && !binaries.iter().any(|b| rules::is_module(&name, b)) {
                audit.role = Role::Library;
            }
            for b in &binaries {
                let (vs, ok, n) = rules::check(claim, audit.role, &name, &suffix, b, abi);
                audit.format = Some(b.format);
                audit.arches.push(b.arch.clone());
                audit.symbols_checked += n;
                audit
                    .abi_info_flags
                    .extend(b.abi_infos.iter().map(|i| i.flags));
                passed = Some(match passed {
                    None => ok,
                    Some(p) => p.into_iter().filter(|r| ok.contains(r)).collect(),
                });
                for v in vs {
                    found.push((path.clone(), many.then(|| b.arch.clone()), v));
                }
            }
            audit.rules_passed = passed.unwrap_or_default();
        }
    }
    Some((audit, found))
}

/// The audit over a wheel's contents held in memory, pure (the tests' entry).
#[cfg(test)]
pub fn audit_contents(
    file: String,
    tags: Vec<String>,
    claim: Claim,
    contents: wheel::Contents,
    abi: &StableAbi,
    waivers: &[Waiver],
) -> WheelAudit {
    let modules = contents
        .shared
        .iter()
        .filter_map(|(path, bytes)| audit_module(claim, path, bytes, abi))
        .collect();
    finish(
        file,
        tags,
        claim,
        contents.wheel.as_deref(),
        modules,
        waivers,
    )
}

/// The wheel-level rules over the judged modules, and the waivers applied.
fn finish(
    file: String,
    tags: Vec<String>,
    claim: Claim,
    wheel_text: Option<&str>,
    judged: Vec<(ModuleAudit, Vec<Found>)>,
    waivers: &[Waiver],
) -> WheelAudit {
    let mut found: Vec<Found> = Vec::new();
    let wheel_finding = |reason: String| {
        (
            String::new(),
            None,
            Violation {
                rule: Rule::Tags,
                symbol: None,
                reason,
            },
        )
    };
    let wheel_tags = match wheel_text.map(wheel::wheel_tags) {
        Some(Ok(tags)) if tags.is_empty() => {
            found.push(wheel_finding(
                "the wheel's `WHEEL` file has no `Tag:` lines: its tags cannot be checked".into(),
            ));
            Vec::new()
        }
        Some(Ok(tags)) => tags,
        Some(Err(e)) => {
            found.push(wheel_finding(format!("{e:#}")));
            Vec::new()
        }
        None => Vec::new(),
    };
    if wheel_text.is_none() {
        found.push((
            String::new(),
            None,
            Violation {
                rule: Rule::Tags,
                symbol: None,
                reason: "the wheel has no `<name>-<version>.dist-info/WHEEL` of its own name: its tags cannot be checked"
                    .into(),
            },
        ));
    }
    let compare = if wheel_tags.is_empty() {
        &tags
    } else {
        &wheel_tags
    };
    for v in rules::tags(&tags, compare, claim) {
        found.push((String::new(), None, v));
    }
    let mut modules = Vec::new();
    for (m, f) in judged {
        modules.push(m);
        found.extend(f);
    }
    let findings: Vec<Finding> = found
        .into_iter()
        .map(|(module, arch, violation)| Finding {
            waived: waivers
                .iter()
                .find(|w| w.covers(&violation))
                .map(|w| w.reason.clone()),
            module,
            arch,
            violation,
        })
        .collect();
    let verdict = if findings.iter().any(|f| f.waived.is_none()) {
        Verdict::Violations
    } else {
        Verdict::Clean
    };
    WheelAudit {
        wheel: file,
        verdict,
        claim: Some(claim),
        tags,
        modules,
        findings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stable_abi::binary::tests::object_with;
    use object::BinaryFormat;

    const LIST: &str = "[function.PyLong_FromLong]\nadded = '3.2'\n[function._Py_Dealloc]\nadded = '3.2'\nabi_only = true\n[function.PyModuleDef_Init]\nadded = '3.5'\n";
    const WHEEL: &str =
        "Wheel-Version: 1.0\nTag: cp315-abi3-linux_x86_64\nTag: cp315-abi3t-linux_x86_64\n";

    fn audit(shared: Vec<(&str, Vec<u8>)>, wheel: Option<&str>, waivers: &[Waiver]) -> WheelAudit {
        let name = wheel::WheelName::parse("m-1.0-cp315-abi3.abi3t-linux_x86_64.whl").unwrap();
        let contents = wheel::Contents {
            wheel: wheel.map(str::to_string),
            shared: shared
                .into_iter()
                .map(|(p, b)| (p.to_string(), b))
                .collect(),
        };
        let abi = StableAbi::parse(LIST, "list").unwrap();
        audit_contents(
            "m.whl".into(),
            name.tags(),
            name.claim().unwrap().unwrap(),
            contents,
            &abi,
            waivers,
        )
    }

    #[test]
    fn objects_written_by_the_object_crate_are_read_and_judged() {
        for format in [BinaryFormat::Elf, BinaryFormat::MachO] {
            let clean = object_with(format, &["PyLong_FromLong"], &["PyInit_m"]);
            let a = audit(vec![("m.abi3t.so", clean)], Some(WHEEL), &[]);
            assert_eq!(a.verdict, Verdict::Clean, "{format:?}: {:?}", a.findings);
            assert_eq!(a.modules[0].symbols_checked, 1);
            let abi3 = object_with(
                format,
                &[
                    "PyLong_FromLong",
                    "_Py_Dealloc",
                    "PyModuleDef_Init",
                    "PyThing_New",
                ],
                &["PyInit_m"],
            );
            let a = audit(vec![("m.abi3t.so", abi3)], Some(WHEEL), &[]);
            let rules: Vec<Rule> = a.failing().map(|f| f.violation.rule).collect();
            assert_eq!(
                rules,
                [Rule::Symbols, Rule::ModuleDef, Rule::Refcount],
                "{format:?}: {:?}",
                a.findings
            );
            assert!(
                a.lines()[0].starts_with("m.whl: m.abi3t.so: `PyThing_New`: not in the Stable ABI"),
                "{:?}",
                a.lines()
            );
        }
    }

    #[test]
    fn a_version_specific_module_in_an_abi3t_wheel_is_a_violation() {
        let m = object_with(BinaryFormat::Elf, &["PyLong_FromLong"], &["PyInit_m"]);
        let a = audit(
            vec![("pkg/m.cpython-315t-x86_64-linux-gnu.so", m)],
            Some(WHEEL),
            &[],
        );
        assert_eq!(a.verdict, Verdict::Violations);
        assert_eq!(a.failing().next().unwrap().violation.rule, Rule::Suffix);
    }

    #[test]
    fn a_corrupt_module_or_missing_wheel_file_is_a_finding() {
        let a = audit(vec![("m.abi3t.so", b"\x7fELF garbage".to_vec())], None, &[]);
        let lines = a.lines();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(
            lines[0].contains("no `<name>-<version>.dist-info/WHEEL`"),
            "{lines:?}"
        );
        assert!(
            lines[1].starts_with("m.whl: m.abi3t.so: cannot be read: not a"),
            "{lines:?}"
        );
    }

    #[test]
    fn a_wheel_file_without_tags_is_a_finding_and_names_cannot_forge_lines() {
        let m = object_with(BinaryFormat::Elf, &["PyLong_FromLong"], &["PyInit_x"]);
        let a = audit(
            vec![("pkg/x\n\x1b[32mok.abi3t.so", m)],
            Some("Wheel-Version: 1.0\n"),
            &[],
        );
        let lines = a.lines();
        assert!(lines[0].contains("has no `Tag:` lines"), "{lines:?}");
        assert!(
            lines
                .iter()
                .all(|l| !l.contains('\n') && !l.contains('\x1b')),
            "{lines:?}"
        );
        assert!(
            lines[1].contains("pkg/x\\u{a}\\u{1b}[32mok.abi3t.so"),
            "{lines:?}"
        );
    }

    #[test]
    fn a_waiver_covers_its_rule_and_symbol_only() {
        let m = object_with(
            BinaryFormat::Elf,
            &["_Py_Dealloc", "PyModuleDef_Init"],
            &["PyInit_m"],
        );
        let w = Waiver {
            rule: "refcount".into(),
            symbol: Some("_Py_Dealloc".into()),
            reason: "checked by hand".into(),
        };
        let a = audit(
            vec![("m.abi3t.so", m.clone())],
            Some(WHEEL),
            std::slice::from_ref(&w),
        );
        assert_eq!(
            a.failing().map(|f| f.violation.rule).collect::<Vec<_>>(),
            [Rule::ModuleDef]
        );
        let both = [
            w,
            Waiver {
                rule: "module-def".into(),
                symbol: None,
                reason: "r".into(),
            },
        ];
        assert_eq!(
            audit(vec![("m.abi3t.so", m)], Some(WHEEL), &both).verdict,
            Verdict::Clean
        );
        assert!(
            Waiver {
                rule: "nope".into(),
                symbol: None,
                reason: "r".into()
            }
            .check()
            .is_err()
        );
        assert!(
            Waiver {
                rule: "link".into(),
                symbol: None,
                reason: " ".into()
            }
            .check()
            .is_err()
        );
    }

    #[test]
    fn a_non_wheel_or_corrupt_zip_is_a_clear_error() {
        let dir = std::env::temp_dir().join(format!("xtask-audit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let abi = StableAbi::parse(LIST, "list").unwrap();
        let bad = dir.join("m-1.0-cp315-abi3.abi3t-linux_x86_64.whl");
        std::fs::write(&bad, b"PK\x03\x04 not really a zip").unwrap();
        let err = format!("{:#}", audit_wheel(&bad, &abi, &[]).unwrap_err());
        assert!(err.contains("is not a readable zip archive"), "{err}");
        let named = dir.join("notes.txt");
        std::fs::write(&named, b"hello").unwrap();
        let err = format!("{:#}", audit_wheel(&named, &abi, &[]).unwrap_err());
        assert!(err.contains("is not a .whl"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
