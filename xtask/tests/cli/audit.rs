//! `cargo xtask audit` on wheels written by the test: modules from the `object` crate's
//! writer, a Stable ABI list of the test's own, and hostile archives.

use std::io::Write;
use std::path::{Path, PathBuf};

use object::write::{Object, StandardSection, Symbol, SymbolSection};
use object::{Architecture, BinaryFormat, Endianness, SymbolFlags, SymbolKind, SymbolScope};

use crate::harness::World;

const LIST: &str = "[function.PyLong_FromLong]\nadded = '3.2'\n[function._Py_Dealloc]\nadded = '3.2'\nabi_only = true\n[function.PyModuleDef_Init]\nadded = '3.5'\n[function.PyFuture_New]\nadded = '3.16'\n";

/// An object file importing and exporting these symbols.
fn module(imports: &[&str], exports: &[&str]) -> Vec<u8> {
    let mut obj = Object::new(BinaryFormat::Elf, Architecture::X86_64, Endianness::Little);
    let text = obj.section_id(StandardSection::Text);
    obj.append_section_data(text, &[0xc3; 8], 1);
    for (names, section) in [
        (imports, SymbolSection::Undefined),
        (exports, SymbolSection::Section(text)),
    ] {
        for name in names {
            obj.add_symbol(Symbol {
                name: name.as_bytes().to_vec(),
                value: 0,
                size: 0,
                kind: SymbolKind::Text,
                scope: SymbolScope::Dynamic,
                weak: false,
                section,
                flags: SymbolFlags::None,
            });
        }
    }
    obj.write().unwrap()
}

/// A wheel `file` in `dir` holding `members`, with a `WHEEL` whose tags match the name.
fn wheel(dir: &Path, file: &str, members: &[(&str, Vec<u8>)]) -> PathBuf {
    let path = dir.join(file);
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let parts: Vec<&str> = file.trim_end_matches(".whl").split('-').collect();
    let mut tags = String::new();
    for abi in parts[3].split('.') {
        tags.push_str(&format!("Tag: {}-{abi}-{}\n", parts[2], parts[4]));
    }
    zip.start_file(format!("{}-{}.dist-info/WHEEL", parts[0], parts[1]), opts)
        .unwrap();
    zip.write_all(format!("Wheel-Version: 1.0\n{tags}").as_bytes())
        .unwrap();
    for (name, bytes) in members {
        zip.start_file(*name, opts).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap();
    path
}

#[test]
fn audit_names_each_violation_and_fails() {
    let w = World::new("audit");
    let list = w.tmp.join("stable_abi.toml");
    std::fs::write(&list, LIST).unwrap();
    let dist = w.tmp.join("dist");
    std::fs::create_dir_all(&dist).unwrap();
    wheel(
        &dist,
        "good-1.0-cp315-abi3.abi3t-linux_x86_64.whl",
        &[(
            "good/_m.abi3t.so",
            module(&["PyLong_FromLong"], &["PyInit__m"]),
        )],
    );
    wheel(
        &dist,
        "bad-1.0-cp315-abi3.abi3t-linux_x86_64.whl",
        &[(
            "bad/_m.abi3t.so",
            module(
                &["PyFuture_New", "_Py_Dealloc", "PyModuleDef_Init"],
                &["PyInit__m"],
            ),
        )],
    );
    wheel(&dist, "plain-1.0-cp315-cp315t-linux_x86_64.whl", &[]);
    let list_arg = list.to_str().unwrap();
    let run = w.fails(
        &["audit", dist.to_str().unwrap(), "--stable-abi", list_arg],
        1,
    );
    let out = &run.stdout;
    assert!(out.contains("good-1.0-cp315-abi3.abi3t-linux_x86_64.whl: clean (cp315 abi3 abi3t; 1 shared object, 1 C-API symbols checked)"), "{out}");
    assert!(
        out.contains("bad-1.0-cp315-abi3.abi3t-linux_x86_64.whl: 3 violations"),
        "{out}"
    );
    assert!(out.contains("bad/_m.abi3t.so: `PyFuture_New`: added to the Stable ABI in 3.16 but the wheel says cp315 (symbols)"), "{out}");
    assert!(
        out.contains("`_Py_Dealloc`: `_Py_Dealloc` is called by an inlined `Py_DECREF`"),
        "{out}"
    );
    assert!(out.contains("(module-def)"), "{out}");
    assert!(
        out.contains("plain-1.0-cp315-cp315t-linux_x86_64.whl: skipped"),
        "{out}"
    );
    assert!(
        run.stderr.contains("1 of 3 wheels have violations"),
        "{}",
        run.stderr
    );

    // --json: stable fields, the same verdicts.
    let run = w.fails(
        &[
            "audit",
            dist.to_str().unwrap(),
            "--stable-abi",
            list_arg,
            "--json",
        ],
        1,
    );
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["stable_abi"]["symbols"], 4);
    let verdicts: Vec<(&str, &str)> = doc["wheels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (x["wheel"].as_str().unwrap(), x["verdict"].as_str().unwrap()))
        .collect();
    assert_eq!(
        verdicts,
        [
            ("bad-1.0-cp315-abi3.abi3t-linux_x86_64.whl", "violations"),
            ("good-1.0-cp315-abi3.abi3t-linux_x86_64.whl", "clean"),
            ("plain-1.0-cp315-cp315t-linux_x86_64.whl", "skipped"),
        ]
    );
    let f = &doc["wheels"][0]["findings"][0];
    assert_eq!(
        (f["rule"].as_str(), f["symbol"].as_str()),
        (Some("symbols"), Some("PyFuture_New"))
    );
    assert_eq!(f["module"], "bad/_m.abi3t.so");

    // Only the good one: exit 0.
    let good = dist.join("good-1.0-cp315-abi3.abi3t-linux_x86_64.whl");
    w.ok(&["audit", good.to_str().unwrap(), "--stable-abi", list_arg]);
}

#[test]
fn hostile_or_missing_inputs_are_clear_errors() {
    let w = World::new("audit-hostile");
    let list = w.tmp.join("stable_abi.toml");
    std::fs::write(&list, LIST).unwrap();
    let list_arg = list.to_str().unwrap();
    // No experiment.yaml and no --stable-abi: says where the list comes from.
    let whl = w.tmp.join("x-1.0-cp315-abi3.abi3t-linux_x86_64.whl");
    std::fs::write(&whl, b"PK\x03\x04truncated").unwrap();
    let run = w.fails(&["audit", whl.to_str().unwrap()], 1);
    assert!(
        run.stderr.contains("experiment.yaml") || run.stderr.contains("--stable-abi"),
        "{}",
        run.stderr
    );
    // A corrupt zip: an error naming the file, no panic.
    let run = w.fails(
        &["audit", whl.to_str().unwrap(), "--stable-abi", list_arg],
        1,
    );
    assert!(
        run.stdout.contains("is not a readable zip archive"),
        "{}",
        run.stdout
    );
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    // A list that is not CPython's.
    let bad_list = w.tmp.join("bad.toml");
    std::fs::write(&bad_list, "[function.PyX]\nadded = 'soon'\n").unwrap();
    let run = w.fails(
        &[
            "audit",
            whl.to_str().unwrap(),
            "--stable-abi",
            bad_list.to_str().unwrap(),
        ],
        1,
    );
    assert!(
        run.stderr.contains("`[function.PyX]`") && run.stderr.contains("'soon'"),
        "{}",
        run.stderr
    );
    // A corrupt module inside a real zip: a finding, not a crash.
    let dist = w.tmp.join("dist");
    std::fs::create_dir_all(&dist).unwrap();
    wheel(
        &dist,
        "y-1.0-cp315-abi3.abi3t-linux_x86_64.whl",
        &[("y/_y.abi3t.so", b"\x7fELF\x02\x01\x01".to_vec())],
    );
    let run = w.fails(
        &["audit", dist.to_str().unwrap(), "--stable-abi", list_arg],
        1,
    );
    assert!(
        run.stdout.contains("y/_y.abi3t.so: cannot be read"),
        "{}",
        run.stdout
    );
    // A FIFO named like a wheel would block a reader forever: refused before it is opened.
    #[cfg(unix)]
    {
        let fifo = w.tmp.join("f-1.0-cp315-abi3.abi3t-linux_x86_64.whl");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let run = w.fails(
            &["audit", fifo.to_str().unwrap(), "--stable-abi", list_arg],
            1,
        );
        assert!(
            run.stderr.contains("is not a regular file or a folder"),
            "{}",
            run.stderr
        );
    }
    // A tag part listing thousands of platforms: refused, not expanded.
    let many = (0..40)
        .map(|i| format!("p{i}"))
        .collect::<Vec<_>>()
        .join(".");
    wheel(&dist, &format!("z-1.0-cp315-abi3-{many}.whl"), &[]);
    let run = w.fails(
        &["audit", dist.to_str().unwrap(), "--stable-abi", list_arg],
        1,
    );
    assert!(
        run.stdout.contains("more than 32 values in one tag"),
        "{}",
        run.stdout
    );
    // Two members of one name (one written as `WHEEX`, then renamed in the bytes, since the
    // writer refuses duplicates): refused, since readers disagree on which one counts.
    let dup = wheel(
        &dist,
        "d-1.0-cp315-abi3-linux_x86_64.whl",
        &[(
            "d-1.0.dist-info/WHEEX",
            b"Tag: cp38-abi3-linux_x86_64\n".to_vec(),
        )],
    );
    let bytes = std::fs::read(&dup).unwrap();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i..].starts_with(b"WHEEX") {
            out.extend_from_slice(b"WHEEL");
            i += 5;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    std::fs::write(&dup, out).unwrap();
    let run = w.fails(
        &["audit", dup.to_str().unwrap(), "--stable-abi", list_arg],
        1,
    );
    assert!(
        run.stdout.contains("holds two members of the same name"),
        "{}",
        run.stdout
    );
    // A folder without wheels.
    let empty = w.tmp.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let run = w.fails(
        &["audit", empty.to_str().unwrap(), "--stable-abi", list_arg],
        1,
    );
    assert!(run.stderr.contains("holds no .whl files"), "{}", run.stderr);
}
