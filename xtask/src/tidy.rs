//! Repository rules checked as ordinary tests: formatting of module docs, the lockfile's
//! security floor, a layout that tells the truth, git calls that cannot take a value
//! for an option, and no `unreachable!` outside tests.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every `.rs` file under `xtask/src`, recursively.
fn sources() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![root().join("xtask/src")];
    while let Some(dir) = dirs.pop() {
        for entry in fs_err::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_module_says_what_it_owns() {
    for path in sources() {
        {
            let text = fs_err::read_to_string(&path).unwrap();
            assert!(
                text.starts_with("//! "),
                "{} must open with a `//!` line saying what it owns",
                path.display()
            );
        }
    }
}

#[test]
fn lockfile_has_the_fixed_libgit2() {
    // CVE-2026-5917 is fixed in libgit2-sys 0.18.8.
    let lock = fs_err::read_to_string(root().join("Cargo.lock")).unwrap();
    let mut lines = lock.lines();
    let mut found = false;
    while let Some(line) = lines.next() {
        if line == "name = \"libgit2-sys\"" {
            let version = lines.next().unwrap().trim_start_matches("version = \"");
            let nums: Vec<u64> = version
                .split(['.', '+', '"'])
                .take(3)
                .map(|n| n.parse().unwrap())
                .collect();
            assert!(
                nums >= vec![0, 18, 8],
                "libgit2-sys {version} is older than 0.18.8 (CVE-2026-5917)"
            );
            found = true;
        }
    }
    assert!(found, "libgit2-sys missing from Cargo.lock");
}

#[test]
fn no_subprocess_outside_xshell() {
    for path in sources() {
        let text = fs_err::read_to_string(&path).unwrap();
        let needle = ["std::process::", "Command"].concat();
        assert!(
            !text.contains(&needle),
            "{}: run programs through xshell's cmd!",
            path.display()
        );
        assert!(
            !text.contains(concat!("\"sh", " -c")),
            "{}: no shell command lines",
            path.display()
        );
    }
}

/// The command modules: one per subcommand in `main.rs`.
const COMMANDS: &[&str] = &[
    "build_all",
    "check",
    "export",
    "save",
    "status",
    "sync",
    "verify",
];

/// Commands share code through the ops layer (`ops/`) and the modules below it; a command that
/// reached into another's internals would tie their changes together again.
#[test]
fn no_command_imports_another() {
    let src = root().join("xtask/src");
    for path in sources() {
        let rel = path
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let Some(own) = COMMANDS
            .iter()
            .find(|c| rel == format!("{c}.rs") || rel.starts_with(&format!("{c}/")))
        else {
            continue;
        };
        let text = fs_err::read_to_string(&path).unwrap();
        for (n, line) in text.lines().enumerate() {
            for other in COMMANDS.iter().filter(|c| *c != own) {
                let uses = [format!("crate::{other}::"), format!("crate::{other};")];
                let uses_braced = format!("crate::{{{other}");
                if uses.iter().any(|u| line.contains(u.as_str())) || line.contains(&uses_braced) {
                    panic!(
                        "{}:{}: the `{own}` command uses `{other}`; move what they share into `ops/`",
                        path.display(),
                        n + 1
                    );
                }
            }
        }
    }
}

/// `println!` panics when stdout is a closed pipe (`cargo xtask status | head -1`); command
/// output goes through `outln!` / `fsx::print_stdout`, which end quietly there.
#[test]
fn no_println_in_commands() {
    let needle = ["print", "ln!("].concat();
    for path in sources() {
        let text = fs_err::read_to_string(&path).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if code.contains(&needle) && !code.contains(&["e", &needle].concat()) {
                panic!(
                    "{}:{}: use `crate::outln!` (a closed pipe must not panic)",
                    path.display(),
                    n + 1
                );
            }
        }
    }
}

#[test]
fn workspace_excludes_checkouts_and_build_copies() {
    // Without this, cargo inside `checkouts/maturin` or a build copy under `target/` thinks
    // it belongs to this workspace and refuses to build.
    let manifest = fs_err::read_to_string(root().join("Cargo.toml")).unwrap();
    assert!(
        manifest.contains(r#"exclude = ["checkouts", "target"]"#),
        "Cargo.toml must exclude checkouts and target"
    );
}

/// The lines of `text` outside `#[cfg(test)]` items, numbered from 1. rustfmt closes an item
/// with a `}` at the indentation of its attribute, which is where the skipping stops.
fn non_test_lines(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((n, line)) = lines.next() {
        if line.trim() != "#[cfg(test)]" {
            out.push((n + 1, line));
            continue;
        }
        let close = format!("{}}}", &line[..line.len() - line.trim_start().len()]);
        for (_, item) in lines.by_ref() {
            if item == close || (item.trim_end().ends_with(';') && !item.contains('{')) {
                break;
            }
        }
    }
    out
}

/// Item 13 of issue 10: a panic that input can reach is a bug. `unreachable!` and friends
/// assert that input cannot get there; make that true with the types instead (as
/// `manifest::Source` does for an upstream and its base) and return an error where it can.
#[test]
fn no_unreachable_outside_tests() {
    let needles = [
        ["unreachable", "!("].concat(),
        ["todo", "!("].concat(),
        ["unimplemented", "!("].concat(),
    ];
    for path in sources() {
        let text = fs_err::read_to_string(&path).unwrap();
        for (n, line) in non_test_lines(&text) {
            let code = line.split("//").next().unwrap_or("");
            if let Some(needle) = needles.iter().find(|x| code.contains(x.as_str())) {
                panic!(
                    "{}:{n}: `{needle}` in code input may reach; make the case impossible in the types or return an error",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn test_items_are_skipped_and_nothing_else() {
    let text = "fn a() {}\n#[cfg(test)]\nmod t;\nfn b() {}\n#[cfg(test)]\nmod tests {\n    fn c() {\n    }\n}\nfn d() {}\n    #[cfg(test)]\n    fn e() {\n    }\n    fn f() {}\n";
    let kept: Vec<(usize, &str)> = non_test_lines(text);
    assert_eq!(
        kept,
        [
            (1, "fn a() {}"),
            (4, "fn b() {}"),
            (10, "fn d() {}"),
            (14, "    fn f() {}")
        ]
    );
}

/// Interpolations a git call may carry before `--end-of-options`: none of them is a value a
/// user or an upstream chose. (The value right after `-C`, `-m` or `-o` needs no entry: git
/// always takes the next argument as that option's value.)
const NOT_USER_VALUES: &[(&str, &str)] = &[
    ("FIXED_CONFIG", "fixed `-c` options"),
    ("FORMAT_PATCH_ARGS", "fixed format-patch options"),
    ("BRANCH", "the tool's branch name, a constant"),
    ("tree", "a tree id printed by `git write-tree`"),
    (
        "branch",
        "inside `--force-with-lease=`, glued to the option",
    ),
    (
        "expected",
        "inside `--force-with-lease=`, glued to the option",
    ),
];

/// Options whose value is the next argument, whatever it looks like.
const TAKES_NEXT: &[&str] = &["-C", "-m", "-o"];

/// `(line, program and arguments)` of each `cmd!` in `text`, from its first string literal.
fn cmd_templates(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut from = 0;
    // Spelled in two parts so that this file's own source holds no call to find.
    let needle = concat!("cmd", "!(");
    while let Some(at) = text[from..].find(needle) {
        let start = from + at;
        from = start + 5;
        let line = text[..start].matches('\n').count() + 1;
        let Some(open) = text[from..].find('"') else {
            break;
        };
        let body_start = from + open + 1;
        let Some(close) = text[body_start..].find('"') else {
            break;
        };
        out.push((line, text[body_start..body_start + close].to_string()));
        from = body_start + close + 1;
    }
    out
}

/// The interpolations in a git command template that come before `--end-of-options` or
/// `--` and are not in the allow-list.
fn unguarded(template: &str) -> Vec<String> {
    let mut words = template.split_whitespace();
    if words.next() != Some("git") {
        return Vec::new();
    }
    let mut bad = Vec::new();
    let mut previous = "git";
    for word in words {
        if word == "--end-of-options" || word == "--" {
            break;
        }
        if TAKES_NEXT.contains(&std::mem::replace(&mut previous, word)) {
            continue;
        }
        let mut rest = word;
        while let Some(open) = rest.find('{') {
            let Some(close) = rest[open..].find('}') else {
                break;
            };
            let name = rest[open + 1..open + close].trim_end_matches("...");
            if !NOT_USER_VALUES.iter().any(|(n, _)| *n == name) {
                bad.push(name.to_string());
            }
            rest = &rest[open + close + 1..];
        }
    }
    bad
}

#[test]
fn git_calls_end_options_before_user_values() {
    let mut problems = Vec::new();
    for path in sources() {
        let text = std::fs::read_to_string(&path).unwrap();
        let shown = path
            .strip_prefix(root())
            .unwrap_or(&path)
            .display()
            .to_string();
        for (line, template) in cmd_templates(&text) {
            for name in unguarded(&template) {
                problems.push(format!(
                    "{shown}:{line}: `{{{name}}}` comes before `--end-of-options` in `{template}`"
                ));
            }
        }
        // Arguments added with `.arg`/`.args` are out of this check's sight, so the git
        // module puts every argument in the `cmd!` string.
        if shown.contains("src/git/") {
            for (i, l) in text.lines().enumerate() {
                if l.contains(".arg(") || l.contains(".args(") {
                    problems.push(format!(
                        "{shown}:{}: pass git arguments in the `cmd!` string, not with `.arg`",
                        i + 1
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_option_check_sees_what_it_must() {
    let cases: &[(&str, &[&str])] = &[
        ("git -C {dir} {FIXED_CONFIG...} fetch origin {id}", &["id"]),
        ("git -C {dir} fetch --end-of-options origin {id}", &[]),
        ("git clone -- {url} {tmp}", &[]),
        ("git log {range} -- {paths...}", &["range"]),
        (
            "git push --force-with-lease={branch}:{expected} {remote}",
            &["remote"],
        ),
        ("git commit -m {message}", &[]),
        ("git -C {dir} archive -o {tar} {rev}", &["rev"]),
        ("tar -xf {tar} -C {dest}", &[]),
    ];
    for (template, want) in cases {
        assert_eq!(unguarded(template), *want, "{template}");
    }
    let text = concat!(
        "let a = 1;\n",
        "cmd",
        "!(\n    sh,\n    \"git fetch {x}\"\n)\n"
    );
    assert_eq!(cmd_templates(text), vec![(2, "git fetch {x}".to_string())]);
}
