//! Applying patch files with `git am`, so that a commit's subject survives the round trip
//! through `format-patch` byte for byte, and reading where a stopped `am` failed.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use xshell::cmd;

use super::cli::{self, FIXED_CONFIG};
use super::{COMMITTER, Checkout, tmp_sibling};

/// How a `git am` run ended.
pub enum AmOutcome {
    Applied,
    Stopped { git_output: String },
}

impl Checkout<'_> {
    /// Applies patch files with `git am --3way`, one commit each. On failure the checkout is
    /// left mid-`am` and the error carries git's explanation.
    ///
    /// `git am` cleans subjects the way mail needs (it drops `Re:`, every leading `[...]`
    /// group, leading colons, and folds runs of whitespace), so `[3.15] Fix` would come back
    /// as `Fix` and the next `save` would rename and re-version the patch. Instead the tool
    /// removes exactly the prefix `format-patch` added and has `am` keep the rest (`--keep`).
    pub fn am(&self, patches: &[PathBuf]) -> Result<AmOutcome> {
        let copies = tmp_sibling(&self.dir, "am");
        let _ = fs_err::remove_dir_all(&copies);
        fs_err::create_dir_all(&copies)
            .with_context(|| format!("creating `{}`", copies.display()))?;
        let result = (|| {
            let mut inputs = Vec::with_capacity(patches.len());
            for (i, patch) in patches.iter().enumerate() {
                let text = fs_err::read(patch)
                    .with_context(|| format!("reading `{}`", patch.display()))?;
                let copy = copies.join(format!("{:04}.patch", i + 1));
                fs_err::write(&copy, without_patch_prefix(&text))
                    .with_context(|| format!("writing `{}`", copy.display()))?;
                inputs.push(copy);
            }
            let (sh, dir) = (self.sh, &self.dir);
            // `git am` reads and splits every input before it applies the first, so the
            // copies can go as soon as it returns, stopped or not.
            self.am_cmd(cmd!(sh, "git -C {dir} {FIXED_CONFIG...} am --quiet --3way --keep --committer-date-is-author-date --whitespace=nowarn -- {inputs...}"))
        })();
        let _ = fs_err::remove_dir_all(&copies);
        result
    }

    pub fn am_continue(&self) -> Result<AmOutcome> {
        let (sh, dir) = (self.sh, &self.dir);
        self.am_cmd(cmd!(
            sh,
            "git -C {dir} {FIXED_CONFIG...} am --quiet --continue"
        ))
    }

    pub fn am_skip(&self) -> Result<AmOutcome> {
        let (sh, dir) = (self.sh, &self.dir);
        self.am_cmd(cmd!(sh, "git -C {dir} {FIXED_CONFIG...} am --quiet --skip"))
    }

    pub fn am_abort(&self) -> Result<()> {
        let (sh, dir) = (self.sh, &self.dir);
        cli::run(cmd!(sh, "git -C {dir} {FIXED_CONFIG...} am --abort"))
    }

    fn am_cmd(&self, am: xshell::Cmd<'_>) -> Result<AmOutcome> {
        let am = am
            .env("GIT_COMMITTER_NAME", COMMITTER.0)
            .env("GIT_COMMITTER_EMAIL", COMMITTER.1);
        let out = cli::output(am).with_context(|| format!("in `{}`", self.dir.display()))?;
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        am_outcome(out.status.code(), self.am_in_progress(), text)
            .with_context(|| format!("in `{}`", self.dir.display()))
    }

    /// Whether `git am` stopped here and waits for `--continue`, `--skip` or `--abort`.
    pub fn am_in_progress(&self) -> bool {
        self.git_dir()
            .join("rebase-apply")
            .join("applying")
            .exists()
    }

    /// The 1-based number of the patch `git am` stopped at.
    pub fn am_current(&self) -> Option<usize> {
        let next = fs_err::read_to_string(self.git_dir().join("rebase-apply/next")).ok()?;
        next.trim().parse().ok()
    }

    /// Re-checks the patch `git am` stopped at against HEAD alone (a scratch index, not the
    /// conflicted one) and returns each hunk that does not apply: `path:line` and the lines
    /// git looked for there.
    pub fn failed_hunks(&self) -> Result<Vec<(String, Vec<String>)>> {
        let index = self.git_dir().join("xtask-check.index");
        let patch = self.git_dir().join("rebase-apply").join("patch");
        let (sh, dir) = (self.sh, &self.dir);
        cli::run(
            cmd!(sh, "git -C {dir} {FIXED_CONFIG...} read-tree HEAD").env("GIT_INDEX_FILE", &index),
        )?;
        let out = cli::output(
            cmd!(
                sh,
                "git -C {dir} {FIXED_CONFIG...} apply --cached --check --verbose -- {patch}"
            )
            .env("GIT_INDEX_FILE", &index),
        )?;
        let _ = fs_err::remove_file(&index);
        Ok(parse_apply_check(&String::from_utf8_lossy(&out.stderr)))
    }

    /// Whether the patch's change is already in HEAD: it applies in reverse to the index.
    pub fn applies_in_reverse(&self, patch: &Path) -> Result<bool> {
        let (sh, dir) = (self.sh, &self.dir);
        let out = cli::output(cmd!(
            sh,
            "git -C {dir} {FIXED_CONFIG...} apply --check --cached --reverse -- {patch}"
        ))?;
        Ok(out.status.success())
    }
}

/// The patch file with the `[PATCH]` group that `format-patch` puts before the subject taken
/// out, so that `git am --keep` gives back the commit's own subject. The group is any leading
/// `[...]` holding `PATCH` (also `[PATCH 2/3]` in a file from a mailing list), followed by one
/// space; only the first `Subject:` header of the mail is touched.
pub fn without_patch_prefix(text: &[u8]) -> Vec<u8> {
    let header_end = find(text, b"\n\n").map_or(text.len(), |i| i + 1);
    let mut at = 0;
    while at < header_end {
        let line_end = text[at..header_end]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(header_end, |i| at + i + 1);
        let line = &text[at..line_end];
        if let Some(value) = line.strip_prefix(b"Subject: ") {
            let start = at + b"Subject: ".len();
            let Some(close) = value.iter().position(|&b| b == b']') else {
                break;
            };
            let group = &value[..=close];
            if !group.starts_with(b"[") || find(group, b"PATCH").is_none() {
                break;
            }
            let mut cut = start + close + 1;
            if text.get(cut) == Some(&b' ') {
                cut += 1;
            }
            let mut out = Vec::with_capacity(text.len());
            out.extend_from_slice(&text[..start]);
            out.extend_from_slice(&text[cut..]);
            return out;
        }
        at = line_end;
    }
    text.to_vec()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Reads `git apply --check --verbose` output into failing hunks and the lines they expected.
pub fn parse_apply_check(stderr: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let mut expected: Vec<String> = Vec::new();
    let mut searching = false;
    for line in stderr.lines() {
        if line == "error: while searching for:" {
            searching = true;
            expected.clear();
        } else if let Some(at) = line.strip_prefix("error: patch failed: ") {
            searching = false;
            while expected.last().is_some_and(|l| l.is_empty()) {
                expected.pop();
            }
            out.push((at.to_string(), std::mem::take(&mut expected)));
        } else if searching {
            expected.push(line.to_string());
        }
    }
    out
}

/// What a finished `git am` means. A git that a signal ended (Ctrl-C reaches the whole
/// process group; a kill) has not stopped at a conflict, even though it leaves
/// `rebase-apply/` behind: calling that a conflict would send the user to `--continue` on a
/// half-applied patch. It is an error instead, and the operation's intent record (kept on
/// error) lets a plain rerun redo it.
pub(crate) fn am_outcome(code: Option<i32>, in_progress: bool, text: String) -> Result<AmOutcome> {
    match code {
        Some(0) => Ok(AmOutcome::Applied),
        None => bail!(
            "git am was interrupted by a signal; nothing is lost: run the same command again to redo it"
        ),
        Some(_) if !in_progress => bail!("git am failed:\n{}", text.trim_end()),
        Some(_) => Ok(AmOutcome::Stopped { git_output: text }),
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_git_am_ended_by_a_signal_is_an_interruption_not_a_conflict() {
        let stopped = |r: Result<AmOutcome>| matches!(r, Ok(AmOutcome::Stopped { .. }));
        assert!(matches!(
            am_outcome(Some(0), false, String::new()),
            Ok(AmOutcome::Applied)
        ));
        assert!(stopped(am_outcome(Some(1), true, "conflict".into())));
        // Killed mid-apply: `rebase-apply/` is there, but nothing stopped at a conflict.
        let err = am_outcome(None, true, String::new()).err().unwrap();
        assert!(
            format!("{err}").contains("interrupted by a signal"),
            "{err}"
        );
        let err = am_outcome(Some(128), false, "fatal: x".into())
            .err()
            .unwrap();
        assert!(format!("{err}").contains("fatal: x"), "{err}");
    }

    #[test]
    fn reads_failed_hunks() {
        let stderr = "Checking patch f...\nerror: while searching for:\n2\n3\n\nerror: patch failed: f:2\nerror: f: patch does not apply\n";
        assert_eq!(
            parse_apply_check(stderr),
            vec![("f:2".to_string(), vec!["2".to_string(), "3".to_string()])]
        );
    }

    #[test]
    fn takes_out_only_the_prefix_format_patch_added() {
        let mail = |subject: &str| {
            format!(
                "From 0000 Mon Sep 17 00:00:00 2001\nFrom: A <a@b>\nSubject: {subject}\n\nbody\nSubject: [PATCH] kept\n"
            )
        };
        let cases = [
            ("[PATCH] Fix it", "Fix it"),
            ("[PATCH] [3.15] Fix it", "[3.15] Fix it"),
            ("[PATCH] [PATCH] Fix it", "[PATCH] Fix it"),
            ("[PATCH] Re: Fix it", "Re: Fix it"),
            ("[PATCH 2/3] Fix it", "Fix it"),
            ("[PATCH]  two spaces", " two spaces"),
            ("[PATCH] =?UTF-8?q?caf=C3=A9?=", "=?UTF-8?q?caf=C3=A9?="),
            ("[PATCH] long\n folded", "long\n folded"),
            ("Fix it", "Fix it"),
            ("[3.15] Fix it", "[3.15] Fix it"),
            ("[PATCH", "[PATCH"),
        ];
        for (subject, want) in cases {
            let got = without_patch_prefix(mail(subject).as_bytes());
            assert_eq!(String::from_utf8(got).unwrap(), mail(want), "{subject}");
        }
        // A file without headers is left alone.
        assert_eq!(
            without_patch_prefix(b"diff --git a/x b/x\n"),
            b"diff --git a/x b/x\n"
        );
    }
}
