//! Running the `git` program: the fixed configuration every call carries, and errors that
//! show the failing subcommand with its arguments and git's stderr, not that configuration.

use std::process::Output;

use anyhow::{Context, Result, bail};

/// Config overrides for every command that reads or writes patches.
pub(crate) const FIXED_CONFIG: &[&str] = &[
    "-c",
    "core.autocrlf=false",
    "-c",
    "core.safecrlf=false",
    "-c",
    "core.quotePath=true",
    "-c",
    "am.threeWay=false",
    "-c",
    "am.keepcr=false",
    "-c",
    "diff.noprefix=false",
    "-c",
    "diff.mnemonicPrefix=false",
    "-c",
    "format.useAutoBase=false",
    "-c",
    "i18n.commitEncoding=UTF-8",
    "-c",
    "protocol.ext.allow=never",
    "-c",
    "protocol.fd.allow=never",
    "-c",
    "commit.gpgSign=false",
    "-c",
    "apply.whitespace=nowarn",
    "-c",
    "core.hooksPath=/dev/null",
    "-c",
    "core.attributesFile=/dev/null",
];

/// At most this many lines of git's stderr go into an error: the first lines say what went
/// wrong, and a usage text or a long list of paths would bury them.
const STDERR_LINES: usize = 30;

/// Runs a git command for its effect. On success git's stderr (warnings, hints) is passed on.
pub(crate) fn run(cmd: xshell::Cmd<'_>) -> Result<()> {
    let out = checked(cmd)?;
    pass_on_stderr(&out);
    Ok(())
}

/// Runs a git command and returns its stdout without the final newline (as xshell's `read`).
pub(crate) fn read(cmd: xshell::Cmd<'_>) -> Result<String> {
    let out = checked(cmd)?;
    pass_on_stderr(&out);
    let mut text = String::from_utf8(out.stdout).context("git printed invalid UTF-8")?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    Ok(text)
}

/// Runs a git command whose exit status is an answer, not an error; only a git that cannot be
/// started is an error.
pub(crate) fn output(cmd: xshell::Cmd<'_>) -> Result<Output> {
    let shown = shown(&cmd.to_string());
    cmd.quiet()
        .ignore_status()
        .output()
        .map_err(|_| anyhow::anyhow!("could not run `{shown}`: is git installed and on PATH?"))
}

fn checked(cmd: xshell::Cmd<'_>) -> Result<Output> {
    let shown = shown(&cmd.to_string());
    let out = output(cmd)?;
    if !out.status.success() {
        let code = out
            .status
            .code()
            .map_or("a signal".to_string(), |c| format!("exit code {c}"));
        let stderr = clip(&String::from_utf8_lossy(&out.stderr));
        if stderr.is_empty() {
            bail!("`{shown}` failed ({code})");
        }
        bail!("`{shown}` failed ({code}):\n{stderr}");
    }
    Ok(out)
}

fn pass_on_stderr(out: &Output) {
    if !out.stderr.is_empty() {
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
    }
}

fn clip(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.trim_end().lines().collect();
    if lines.len() <= STDERR_LINES {
        return lines.join("\n");
    }
    let more = lines.len() - STDERR_LINES;
    format!(
        "{}\n... ({more} more lines)",
        lines[..STDERR_LINES].join("\n")
    )
}

/// The command as a person wants to read it: `git` and the subcommand with its arguments,
/// without the global options before the subcommand (`-C <dir>`, the `-c` list). `display`
/// is xshell's rendering, where an argument holding whitespace is quoted with escapes.
pub(crate) fn shown(display: &str) -> String {
    let tokens = tokens(display);
    let mut rest = tokens.iter().skip(1).peekable();
    while let Some(t) = rest.peek() {
        if *t == "-C" || *t == "-c" {
            rest.next();
            rest.next();
        } else if t.starts_with('-') {
            rest.next();
        } else {
            break;
        }
    }
    let mut out = tokens.first().cloned().unwrap_or_default();
    for t in rest {
        out.push(' ');
        out.push_str(t);
    }
    out
}

/// Splits xshell's rendering of a command into its arguments, each as rendered.
fn tokens(display: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = display.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c == ' ' {
            chars.next();
            continue;
        }
        let mut tok = String::new();
        if c == '"' {
            chars.next();
            tok.push('"');
            while let Some(c) = chars.next() {
                tok.push(c);
                if c == '\\' {
                    if let Some(e) = chars.next() {
                        tok.push(e);
                    }
                } else if c == '"' {
                    break;
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ' ' {
                    break;
                }
                tok.push(c);
                chars.next();
            }
        }
        out.push(tok);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_the_subcommand_and_its_arguments_only() {
        let cases = [
            (
                "git -C /w/checkouts/demo -c core.autocrlf=false -c am.keepcr=false fetch --quiet --end-of-options origin abc",
                "git fetch --quiet --end-of-options origin abc",
            ),
            (
                "git -C \"/a b/c\" -c x=y --no-optional-locks status --porcelain=v1",
                "git status --porcelain=v1",
            ),
            (
                "git -c a=b commit-tree 123 -m \"Import demo 1.0\\n\"",
                "git commit-tree 123 -m \"Import demo 1.0\\n\"",
            ),
            ("git init --quiet x", "git init --quiet x"),
            ("git", "git"),
        ];
        for (display, want) in cases {
            assert_eq!(shown(display), want, "{display}");
        }
    }

    #[test]
    fn a_failing_git_names_its_subcommand_not_the_config_list() {
        let sh = xshell::Shell::new().unwrap();
        let dir = std::env::temp_dir().join("xtask-cli-no-repo-here");
        let _ = fs_err::create_dir_all(&dir);
        let rev = "no-such-rev";
        let err = read(xshell::cmd!(
            sh,
            "git -C {dir} {FIXED_CONFIG...} log --end-of-options {rev}"
        ))
        .unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.starts_with("`git log --end-of-options no-such-rev` failed (exit code "),
            "{text}"
        );
        assert!(!text.contains("core.autocrlf"), "{text}");
        assert!(text.len() < 300, "{text}");
    }

    #[test]
    fn long_stderr_is_clipped() {
        let text: String = (0..100).map(|i| format!("line {i}\n")).collect();
        let clipped = clip(&text);
        assert!(
            clipped.ends_with("line 29\n... (70 more lines)"),
            "{clipped}"
        );
    }
}
