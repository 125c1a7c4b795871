//! The audit's rules, pure: a wheel's claim (its `cpXY` tag, abi3 and/or abi3t) and one
//! module's binary in, violations out. docs/audit.md gives each rule's reasoning and evidence.

use serde::Serialize;

use super::binary::{Binary, Format};
use super::list::{Kind, StableAbi, Version};

/// What a wheel's tags promise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Claim {
    /// The oldest CPython the wheel is for (`cp315` is 3.15).
    pub python: Version,
    /// Tagged `abi3`: the GIL-enabled layout of the Stable ABI.
    pub abi3: bool,
    /// Tagged `abi3t`: the free-threaded-agnostic layout (PEP 803).
    pub abi3t: bool,
}

/// A rule's stable name (in `--json`, in waivers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// Every C-API symbol imported is an exported Stable ABI symbol of the claimed version.
    Symbols,
    /// The module exports its init function, and for abi3t the PEP 793 `PyModExport_`.
    ModuleInit,
    /// An abi3t module does not build its module from a `PyModuleDef` (opaque in abi3t).
    ModuleDef,
    /// An abi3t module does not inline `Py_DECREF` (which reads `ob_refcnt`).
    Refcount,
    /// An abi3t module defined by slots carries a `PyABIInfo` that says free-threading
    /// agnostic, for no later Stable ABI than the tag.
    AbiInfo,
    /// No link to a version-specific libpython / Python framework / pythonXY.dll.
    Link,
    /// The file name's suffix is one that every claimed interpreter loads.
    Suffix,
    /// The wheel's tags agree with each other and exist (abi3t from cp315).
    Tags,
}

impl Rule {
    pub const ALL: [Rule; 8] = [
        Rule::Symbols,
        Rule::ModuleInit,
        Rule::ModuleDef,
        Rule::Refcount,
        Rule::AbiInfo,
        Rule::Link,
        Rule::Suffix,
        Rule::Tags,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Symbols => "symbols",
            Rule::ModuleInit => "module-init",
            Rule::ModuleDef => "module-def",
            Rule::Refcount => "refcount",
            Rule::AbiInfo => "abi-info",
            Rule::Link => "link",
            Rule::Suffix => "suffix",
            Rule::Tags => "tags",
        }
    }

    pub fn parse(name: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

/// One broken promise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub rule: Rule,
    /// The symbol or library concerned, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub symbol: Option<String>,
    pub reason: String,
}

fn violation(rule: Rule, symbol: Option<&str>, reason: String) -> Violation {
    Violation {
        rule,
        symbol: symbol.map(str::to_string),
        reason,
    }
}

/// The first version with abi3t.
pub const ABI3T_SINCE: Version = Version::new(3, 15);

/// Whether a name belongs to Python's C API (the prefixes CPython reserves).
pub fn is_c_api(name: &str) -> bool {
    name.starts_with("Py") || name.starts_with("_Py")
}

/// What a shared object in a wheel is: an extension module Python imports, or a library one
/// links (vendored by auditwheel into `<pkg>.libs/`, by delocate into `.dylibs/`, or any
/// `.dylib` or versioned `.so.N`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Extension,
    Library,
}

/// An extension module's name and suffix from its path in the wheel, or `None` for a file
/// that is not a shared object at all.
pub fn classify(path: &str) -> Option<(Role, String, String)> {
    let file = path.rsplit('/').next().unwrap_or(path);
    let dirs = &path[..path.len() - file.len()];
    let lower = file.to_ascii_lowercase();
    let shared = lower.ends_with(".so")
        || lower.ends_with(".pyd")
        || lower.ends_with(".dylib")
        || lower.contains(".so.");
    if !shared {
        return None;
    }
    let (name, suffix) = match file.find('.') {
        Some(i) => (&file[..i], &file[i..]),
        None => (file, ""),
    };
    let vendored = dirs
        .split('/')
        .any(|d| d.ends_with(".libs") || d == ".dylibs");
    let library = vendored || lower.ends_with(".dylib") || lower.contains(".so.");
    let role = if library {
        Role::Library
    } else {
        Role::Extension
    };
    Some((role, name.to_string(), suffix.to_string()))
}

/// Checks one architecture of one shared object against the claim. Returns the violations,
/// the rules that applied and passed, and how many C-API imports were checked.
pub fn check(
    claim: Claim,
    role: Role,
    name: &str,
    suffix: &str,
    binary: &Binary,
    abi: &StableAbi,
) -> (Vec<Violation>, Vec<Rule>, usize) {
    let mut out = Vec::new();
    let mut applied = vec![Rule::Symbols, Rule::Link];
    let checked = symbols(claim, binary, abi, &mut out);
    link(claim, binary, &mut out);
    if role == Role::Extension {
        applied.extend([Rule::ModuleInit, Rule::Suffix]);
        module_init(name, binary, &mut out);
        suffix_rule(claim, suffix, binary.format, &mut out);
        if claim.abi3t {
            applied.extend([Rule::ModuleDef, Rule::Refcount]);
            abi3t_layout(binary, &mut out);
            if exports(binary, &format!("PyModExport_{name}")) {
                applied.push(Rule::AbiInfo);
                abi_info(claim, name, binary, &mut out);
            }
        }
    }
    let passed = applied
        .into_iter()
        .filter(|r| !out.iter().any(|v| v.rule == *r))
        .collect();
    (out, passed, checked)
}

fn symbols(claim: Claim, binary: &Binary, abi: &StableAbi, out: &mut Vec<Violation>) -> usize {
    let mut checked = 0;
    let newest = abi
        .newest
        .map(|v| format!(" (the list goes up to {v})"))
        .unwrap_or_default();
    for import in &binary.imports {
        let name = import.name.as_str();
        if !is_c_api(name) {
            continue;
        }
        checked += 1;
        let reason = match abi.get(name) {
            None => Some(format!("not in the Stable ABI{newest}")),
            Some(item) => match item.kind {
                Kind::Other(kind) => Some(format!(
                    "a {kind} of the Limited API, not an exported Stable ABI symbol"
                )),
                Kind::Function | Kind::Data if item.added > claim.python => Some(format!(
                    "added to the Stable ABI in {} but the wheel says cp{}{}",
                    item.added, claim.python.major, claim.python.minor
                )),
                Kind::Function | Kind::Data => match item.ifdef.as_deref() {
                    Some("MS_WINDOWS") if binary.format != Format::Pe => {
                        Some("exported only on Windows (ifdef MS_WINDOWS)".to_string())
                    }
                    Some(debug @ ("Py_REF_DEBUG" | "Py_TRACE_REFS")) => Some(format!(
                        "exported only by debug builds of CPython (ifdef {debug})"
                    )),
                    _ => None,
                },
            },
        };
        if let Some(reason) = reason {
            out.push(violation(Rule::Symbols, Some(name), reason));
        }
    }
    checked
}

fn link(claim: Claim, binary: &Binary, out: &mut Vec<Violation>) {
    for lib in &binary.libraries {
        let file = lib.rsplit(['/', '\\']).next().unwrap_or(lib);
        let lower = file.to_ascii_lowercase();
        let reason = match binary.format {
            Format::Elf if lower.starts_with("libpython") => Some(format!(
                "links `{lib}`: a Stable ABI module takes its symbols from the interpreter that loads it, never from a libpython"
            )),
            Format::MachO if lib.contains("Python.framework") || lower.starts_with("libpython") => {
                Some(format!(
                    "links `{lib}`: a Stable ABI module links no Python framework or libpython (build with `-undefined dynamic_lookup`)"
                ))
            }
            Format::Pe if lower.starts_with("python") && lower.ends_with(".dll") => {
                let want = if claim.abi3t {
                    "python3t.dll"
                } else {
                    "python3.dll"
                };
                (lower != want).then(|| match lower.as_str() {
                    "python3.dll" => format!(
                        "links `{lib}`, the abi3 (GIL) layout's DLL; an abi3t module links python3t.dll"
                    ),
                    "python3t.dll" => format!(
                        "links `{lib}`, the abi3t DLL, which exists only from CPython 3.15; an abi3 module links python3.dll"
                    ),
                    _ => format!(
                        "links `{lib}`, one CPython version's DLL; a Stable ABI module links {want}"
                    ),
                })
            }
            _ => None,
        };
        if let Some(reason) = reason {
            out.push(violation(Rule::Link, Some(lib), reason));
        }
    }
}

fn exports(binary: &Binary, symbol: &str) -> bool {
    binary.exports.iter().any(|e| e == symbol)
}

/// Whether a shared object named like a module is one: it exports an init, or it imports the
/// C API (then a missing init is a broken module). One that does neither is a library that
/// Python code loads with ctypes or cffi (pycryptodome's `.abi3.so` files).
pub fn is_module(name: &str, binary: &Binary) -> bool {
    exports(binary, &format!("PyInit_{name}"))
        || exports(binary, &format!("PyModExport_{name}"))
        || binary.imports.iter().any(|i| is_c_api(&i.name))
}

fn module_init(name: &str, binary: &Binary, out: &mut Vec<Violation>) {
    let init = format!("PyInit_{name}");
    let export = format!("PyModExport_{name}");
    if !exports(binary, &init) && !exports(binary, &export) {
        out.push(violation(
            Rule::ModuleInit,
            Some(&init),
            format!("imports the C API but exports neither `{init}` nor `{export}`: Python cannot import it as `{name}`"),
        ));
    }
}

fn abi_info(claim: Claim, name: &str, binary: &Binary, out: &mut Vec<Violation>) {
    let export = format!("PyModExport_{name}");
    let infos = &binary.abi_infos;
    if infos.is_empty() {
        out.push(violation(
            Rule::AbiInfo,
            Some(&export),
            "defined by slots (PEP 793) but no `PyABIInfo` (`Py_mod_abi`) found: CPython 3.15 refuses such a module (the audit finds PyABIInfo by its bytes, so this may be a false alarm; waive with a reason)".to_string(),
        ));
        return;
    }
    if !infos.iter().any(|i| i.agnostic()) {
        let flags: Vec<String> = infos.iter().map(|i| format!("{:#06x}", i.flags)).collect();
        out.push(violation(
            Rule::AbiInfo,
            Some(&export),
            format!("its `PyABIInfo` flags ({}) do not say free-threading agnostic (GIL|FREETHREADED): compiled for one layout, so the other build refuses it", flags.join(", ")),
        ));
    }
    if let Some(newest) = infos
        .iter()
        .filter_map(|i| i.abi())
        .filter(|v| *v > claim.python)
        .max()
    {
        out.push(violation(
            Rule::AbiInfo,
            Some(&export),
            format!(
                "its `PyABIInfo` asks for the {newest} Stable ABI but the wheel says cp{}{}",
                claim.python.major, claim.python.minor
            ),
        ));
    }
}

/// The functions that take a `PyModuleDef`'s layout: only a module that defines one calls them.
const MODULE_DEF_FUNCTIONS: [&str; 4] = [
    "PyModuleDef_Init",
    "PyModule_Create2",
    "PyModule_FromDefAndSpec2",
    "PyModule_ExecDef",
];

fn abi3t_layout(binary: &Binary, out: &mut Vec<Violation>) {
    for import in &binary.imports {
        let name = import.name.as_str();
        if MODULE_DEF_FUNCTIONS.contains(&name) {
            out.push(violation(
                Rule::ModuleDef,
                Some(name),
                format!("`{name}` takes a `PyModuleDef`, which is opaque in abi3t: the module defines one, so it was compiled for the abi3 layout (may be a false alarm for a module that only passes on a definition made elsewhere; waive with a reason)"),
            ));
        }
        if name == "_Py_Dealloc" {
            out.push(violation(
                Rule::Refcount,
                Some(name),
                "`_Py_Dealloc` is called by an inlined `Py_DECREF`, which reads and writes `ob_refcnt`, a field that abi3t hides and the free-threaded build lays out differently (limited API before 3.12, or not the limited API)".to_string(),
            ));
        }
    }
}

fn suffix_rule(claim: Claim, suffix: &str, format: Format, out: &mut Vec<Violation>) {
    let lower = suffix.to_ascii_lowercase();
    let reason = if format == Format::Pe || lower.ends_with(".pyd") {
        (lower != ".pyd").then(|| {
            format!("`{suffix}` names one CPython version; a Stable ABI module on Windows is plain `.pyd`")
        })
    } else if lower.starts_with(".cpython-") {
        Some(format!(
            "`{suffix}` names one CPython version; the Stable ABI's suffixes are `.abi3.so`, `.abi3t.so` or `.so`"
        ))
    } else if claim.abi3t && (lower == ".abi3.so" || lower.starts_with(".abi3-")) {
        Some(format!(
            "the free-threaded build does not load `{suffix}` (it loads `.abi3t.so` and `.so`)"
        ))
    } else if !claim.abi3t
        && claim.python < ABI3T_SINCE
        && (lower == ".abi3t.so" || lower.starts_with(".abi3t-"))
    {
        Some(format!(
            "CPython before 3.15 does not load `{suffix}`, but the wheel says cp{}{}",
            claim.python.major, claim.python.minor
        ))
    } else if !matches!(lower.as_str(), ".so" | ".abi3.so" | ".abi3t.so")
        && !lower.starts_with(".abi3-")
        && !lower.starts_with(".abi3t-")
    {
        Some(format!(
            "`{suffix}` is not a suffix CPython loads extension modules with"
        ))
    } else {
        None
    };
    if let Some(reason) = reason {
        out.push(violation(Rule::Suffix, Some(suffix), reason));
    }
}

/// The wheel-level rule: the file name's tags against `WHEEL`'s `Tag:` lines, and abi3t only
/// from cp315. `name_tags` and `wheel_tags` are expanded `python-abi-platform` triples.
pub fn tags(name_tags: &[String], wheel_tags: &[String], claim: Claim) -> Vec<Violation> {
    let mut out = Vec::new();
    let mut a: Vec<&String> = name_tags.iter().collect();
    let mut b: Vec<&String> = wheel_tags.iter().collect();
    a.sort();
    b.sort();
    if !wheel_tags.is_empty() && a != b {
        out.push(violation(
            Rule::Tags,
            None,
            format!(
                "the file name says {} but WHEEL's `Tag:` lines say {}",
                join(&a),
                join(&b)
            ),
        ));
    }
    if claim.abi3t && claim.python < ABI3T_SINCE {
        out.push(violation(
            Rule::Tags,
            None,
            format!(
                "tagged abi3t for cp{}{}, but abi3t exists from CPython 3.15 (cp315)",
                claim.python.major, claim.python.minor
            ),
        ));
    }
    out
}

fn join(tags: &[&String]) -> String {
    if tags.is_empty() {
        return "nothing".into();
    }
    tags.iter()
        .map(|t| format!("`{t}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stable_abi::binary::{AbiInfo, Import};

    const LIST: &str = "
[function.PyLong_FromLong]
    added = '3.2'
[function._Py_Dealloc]
    added = '3.2'
    abi_only = true
[function._Py_DecRef]
    added = '3.10'
    abi_only = true
[data.PyExc_TypeError]
    added = '3.2'
[function.PyModuleDef_Init]
    added = '3.5'
[function.PyModule_FromSlotsAndSpec]
    added = '3.15'
[function.PyFuture_New]
    added = '3.16'
[function.PyErr_SetFromWindowsErr]
    added = '3.7'
    ifdef = 'MS_WINDOWS'
[function._Py_NegativeRefcount]
    added = '3.2'
    abi_only = true
    ifdef = 'Py_REF_DEBUG'
[macro.Py_INCREF]
    added = '3.2'
";

    fn abi() -> StableAbi {
        StableAbi::parse(LIST, "stable_abi.toml").unwrap()
    }

    const ABI3T: Claim = Claim {
        python: Version::new(3, 15),
        abi3: true,
        abi3t: true,
    };
    const ABI3_CP38: Claim = Claim {
        python: Version::new(3, 8),
        abi3: true,
        abi3t: false,
    };

    fn binary(format: Format, imports: &[&str], exports: &[&str], libs: &[&str]) -> Binary {
        Binary {
            format,
            arch: "x86_64".into(),
            imports: imports
                .iter()
                .map(|n| Import {
                    name: n.to_string(),
                    library: String::new(),
                })
                .collect(),
            exports: exports.iter().map(|s| s.to_string()).collect(),
            libraries: libs.iter().map(|s| s.to_string()).collect(),
            abi_infos: vec![AbiInfo {
                flags: 0x7,
                build_version: 0x030f00f0,
                abi_version: 0x030f0000,
            }],
        }
    }

    /// (rule, symbol) of each violation of an extension `m` with this suffix.
    fn run(claim: Claim, suffix: &str, b: &Binary) -> Vec<(Rule, Option<String>)> {
        let (vs, passed, _) = check(claim, Role::Extension, "m", suffix, b, &abi());
        for v in &vs {
            assert!(!passed.contains(&v.rule), "{v:?} yet passed");
        }
        vs.into_iter().map(|v| (v.rule, v.symbol)).collect()
    }

    fn sym(rule: Rule, s: &str) -> (Rule, Option<String>) {
        (rule, Some(s.to_string()))
    }

    #[test]
    fn a_clean_abi3t_module_passes_every_rule() {
        let b = binary(
            Format::Elf,
            &[
                "PyLong_FromLong",
                "PyExc_TypeError",
                "_Py_DecRef",
                "PyModule_FromSlotsAndSpec",
                "memcpy",
            ],
            &["PyModExport_m"],
            &["libc.so.6"],
        );
        let (vs, passed, checked) = check(ABI3T, Role::Extension, "m", ".abi3t.so", &b, &abi());
        assert_eq!(vs, []);
        assert_eq!(checked, 4, "memcpy is not the C API");
        for r in [
            Rule::Symbols,
            Rule::Link,
            Rule::ModuleInit,
            Rule::Suffix,
            Rule::ModuleDef,
            Rule::Refcount,
            Rule::AbiInfo,
        ] {
            assert!(passed.contains(&r), "{r:?}");
        }
    }

    #[test]
    fn symbols_outside_the_list_or_newer_than_the_tag_are_violations() {
        let b = binary(
            Format::Elf,
            &[
                "PyUnstable_Foo",
                "PyFuture_New",
                "Py_INCREF",
                "PyErr_SetFromWindowsErr",
                "_Py_NegativeRefcount",
            ],
            &["PyModExport_m"],
            &[],
        );
        let (vs, _, _) = check(ABI3T, Role::Extension, "m", ".abi3t.so", &b, &abi());
        let reasons: Vec<(&str, &str)> = vs
            .iter()
            .map(|v| (v.symbol.as_deref().unwrap(), v.reason.as_str()))
            .collect();
        assert_eq!(reasons.len(), 5, "{reasons:?}");
        assert!(
            reasons[0]
                .1
                .starts_with("not in the Stable ABI (the list goes up to 3.16)")
        );
        assert_eq!(
            reasons[1].1,
            "added to the Stable ABI in 3.16 but the wheel says cp315"
        );
        assert!(reasons[2].1.contains("a macro"));
        assert!(reasons[3].1.contains("only on Windows"));
        assert!(reasons[4].1.contains("debug builds"));
        // The Windows-only function is fine in a PE module.
        let pe = binary(
            Format::Pe,
            &["PyErr_SetFromWindowsErr"],
            &["PyModExport_m"],
            &["python3t.dll"],
        );
        assert_eq!(run(ABI3T, ".pyd", &pe), []);
    }

    #[test]
    fn abi_only_and_data_symbols_are_part_of_the_abi() {
        let b = binary(
            Format::Elf,
            &["_Py_Dealloc", "PyExc_TypeError"],
            &["PyInit_m"],
            &[],
        );
        assert_eq!(run(ABI3_CP38, ".abi3.so", &b), []);
    }

    #[test]
    fn a_module_without_an_init_cannot_be_imported() {
        let b = binary(Format::Elf, &["PyLong_FromLong"], &["PyInit_other"], &[]);
        assert_eq!(
            run(ABI3_CP38, ".abi3.so", &b),
            [sym(Rule::ModuleInit, "PyInit_m")]
        );
        // Neither an init nor the C API: a library for ctypes, not a module.
        let lib = binary(Format::Elf, &["memcpy"], &["crypto_op"], &[]);
        assert!(!is_module("m", &lib));
        assert!(is_module("m", &b));
    }

    #[test]
    fn the_abi3_layout_in_an_abi3t_wheel_is_named() {
        // What `-DPy_LIMITED_API=0x03080000` against 3.15's headers gives (xtask/bench/audit).
        let b = binary(
            Format::Elf,
            &["_Py_Dealloc", "PyModuleDef_Init"],
            &["PyInit_m"],
            &[],
        );
        assert_eq!(
            run(ABI3T, ".abi3t.so", &b),
            [
                sym(Rule::Refcount, "_Py_Dealloc"),
                sym(Rule::ModuleDef, "PyModuleDef_Init")
            ]
        );
        // The same module in an abi3-only wheel is fine.
        assert_eq!(run(ABI3_CP38, ".abi3.so", &b), []);
        // cffi's out-of-line modules: `PyInit_` whose module `_cffi_backend` makes.
        let cffi = binary(
            Format::Elf,
            &["PyLong_FromLong", "_Py_DecRef"],
            &["PyInit_m"],
            &[],
        );
        assert_eq!(run(ABI3T, ".abi3t.so", &cffi), []);
    }

    #[test]
    fn the_abi_info_must_say_free_threading_agnostic() {
        let mut b = binary(
            Format::Elf,
            &["PyModule_FromSlotsAndSpec"],
            &["PyModExport_m"],
            &[],
        );
        b.abi_infos[0].flags = 0x3;
        assert_eq!(
            run(ABI3T, ".abi3t.so", &b),
            [sym(Rule::AbiInfo, "PyModExport_m")]
        );
        b.abi_infos.clear();
        let (vs, _, _) = check(ABI3T, Role::Extension, "m", ".abi3t.so", &b, &abi());
        assert!(vs[0].reason.contains("may be a false alarm"), "{vs:?}");
        b.abi_infos = vec![AbiInfo {
            flags: 0x7,
            build_version: 0,
            abi_version: 0x03100000,
        }];
        let (vs, _, _) = check(ABI3T, Role::Extension, "m", ".abi3t.so", &b, &abi());
        assert_eq!(
            vs[0].reason,
            "its `PyABIInfo` asks for the 3.16 Stable ABI but the wheel says cp315"
        );
        // PyO3 writes no versions: flags alone decide.
        b.abi_infos = vec![AbiInfo {
            flags: 0x7,
            build_version: 0,
            abi_version: 0,
        }];
        assert_eq!(run(ABI3T, ".abi3t.so", &b), []);
    }

    #[test]
    fn links_to_one_pythons_library_are_violations() {
        let cases = [
            (Format::Elf, "libpython3.15.so.1.0", ABI3T, true),
            (Format::Elf, "libpthread.so.0", ABI3T, false),
            (
                Format::MachO,
                "/Library/Frameworks/Python.framework/Versions/3.15/Python",
                ABI3T,
                true,
            ),
            (Format::MachO, "/usr/lib/libSystem.B.dylib", ABI3T, false),
            (Format::Pe, "python3t.dll", ABI3T, false),
            (Format::Pe, "python3.dll", ABI3T, true),
            (Format::Pe, "python315.dll", ABI3T, true),
            (Format::Pe, "python3.dll", ABI3_CP38, false),
            (Format::Pe, "python3t.dll", ABI3_CP38, true),
            (Format::Pe, "KERNEL32.dll", ABI3_CP38, false),
        ];
        for (format, lib, claim, bad) in cases {
            let suffix = if format == Format::Pe {
                ".pyd"
            } else if claim.abi3t {
                ".abi3t.so"
            } else {
                ".abi3.so"
            };
            let b = binary(format, &[], &["PyModExport_m", "PyInit_m"], &[lib]);
            let got = run(claim, suffix, &b);
            assert_eq!(got == [sym(Rule::Link, lib)], bad, "{lib}: {got:?}");
            assert_eq!(got.is_empty(), !bad, "{lib}: {got:?}");
        }
    }

    #[test]
    fn suffixes_must_load_on_every_claimed_interpreter() {
        let b = binary(Format::Elf, &[], &["PyModExport_m", "PyInit_m"], &[]);
        let abi3_cp315 = Claim {
            abi3t: false,
            ..ABI3T
        };
        for (claim, suffix, bad) in [
            (ABI3T, ".abi3t.so", false),
            (ABI3T, ".abi3t-x86_64-linux-gnu.so", false),
            (ABI3T, ".so", false),
            (ABI3T, ".abi3.so", true),
            (ABI3T, ".cpython-315t-x86_64-linux-gnu.so", true),
            (ABI3T, ".cpython-315-x86_64-linux-gnu.so", true),
            (ABI3T, ".abi3t.so.bak", true),
            (ABI3_CP38, ".abi3.so", false),
            (ABI3_CP38, ".abi3t.so", true),
            (abi3_cp315, ".abi3t.so", false),
        ] {
            let got = run(claim, suffix, &b);
            assert_eq!(!got.is_empty(), bad, "{suffix} {claim:?}: {got:?}");
        }
        let pe = binary(Format::Pe, &[], &["PyInit_m"], &["python3.dll"]);
        assert_eq!(run(ABI3_CP38, ".pyd", &pe), []);
        assert_eq!(
            run(ABI3_CP38, ".cp38-win_amd64.pyd", &pe),
            [sym(Rule::Suffix, ".cp38-win_amd64.pyd")]
        );
    }

    #[test]
    fn tags_must_agree_and_abi3t_starts_at_cp315() {
        let name = vec![
            "cp315-abi3-linux_x86_64".to_string(),
            "cp315-abi3t-linux_x86_64".to_string(),
        ];
        assert_eq!(tags(&name, &name, ABI3T), []);
        let wheel = vec!["cp315-abi3-linux_x86_64".to_string()];
        let v = tags(&name, &wheel, ABI3T);
        assert_eq!(v.len(), 1);
        assert!(
            v[0].reason
                .contains("WHEEL's `Tag:` lines say `cp315-abi3-linux_x86_64`"),
            "{v:?}"
        );
        let cp314 = Claim {
            python: Version::new(3, 14),
            ..ABI3T
        };
        assert!(
            tags(&name, &[], cp314)[0]
                .reason
                .contains("abi3t exists from CPython 3.15")
        );
    }

    #[test]
    fn shared_objects_are_modules_or_libraries() {
        let c = classify;
        assert_eq!(
            c("pkg/_x.abi3t.so"),
            Some((Role::Extension, "_x".into(), ".abi3t.so".into()))
        );
        assert_eq!(
            c("pkg/_x.pyd"),
            Some((Role::Extension, "_x".into(), ".pyd".into()))
        );
        assert_eq!(
            c("pkg.libs/libssl-1a2b.so.3"),
            Some((Role::Library, "libssl-1a2b".into(), ".so.3".into()))
        );
        assert_eq!(c("pkg/.dylibs/libz.1.dylib").unwrap().0, Role::Library);
        assert_eq!(c("pkg/__init__.py"), None);
        assert_eq!(c("pkg/data.json"), None);
    }
}
