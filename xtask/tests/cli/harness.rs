//! The test harness: a temp dir holding an upstream repository, a repository root with
//! `patches/`, and a fixed environment (after git-branchless) so commit ids are reproducible.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use xshell::{Shell, cmd};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub const DATE: &str = "2001-02-03T04:05:06Z";

/// One test's world. Dropping it removes the temp dir.
pub struct World {
    pub tmp: PathBuf,
    pub root: PathBuf,
    pub upstream: PathBuf,
    pub sh: Shell,
}

impl Drop for World {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.tmp);
        }
    }
}

pub fn fixed_env() -> Vec<(&'static str, String)> {
    vec![
        ("GIT_CONFIG_NOSYSTEM", "1".into()),
        ("GIT_AUTHOR_NAME", "A U Thor".into()),
        ("GIT_AUTHOR_EMAIL", "author@example.org".into()),
        ("GIT_AUTHOR_DATE", DATE.into()),
        ("GIT_COMMITTER_NAME", "C O Mitter".into()),
        ("GIT_COMMITTER_EMAIL", "committer@example.org".into()),
        ("GIT_COMMITTER_DATE", DATE.into()),
        ("TZ", "UTC".into()),
        ("LC_ALL", "C".into()),
        ("GIT_TERMINAL_PROMPT", "0".into()),
    ]
}

impl World {
    /// A world with an upstream repository of three files and one commit, and an empty root.
    pub fn new(name: &str) -> World {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let tmp =
            std::env::temp_dir().join(format!("xtask-test-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(tmp.join("home")).unwrap();
        std::fs::create_dir_all(tmp.join("root/patches")).unwrap();
        let sh = Shell::new().unwrap();
        sh.set_var("HOME", tmp.join("home"));
        sh.set_var("XDG_CONFIG_HOME", tmp.join("home/.config"));
        for (k, v) in fixed_env() {
            sh.set_var(k, v);
        }
        let upstream = tmp.join("upstream");
        let w = World {
            root: tmp.join("root"),
            upstream,
            tmp,
            sh,
        };
        w.git_init(&w.upstream);
        w.write(&w.upstream, "README", "hello\n");
        w.write(&w.upstream, "src/lib.c", &numbered_lines(1, 30));
        w.write(&w.upstream, "docs/guide.txt", "guide\n");
        w.commit_all(&w.upstream, "Initial import");
        w
    }

    pub fn git_init(&self, dir: &Path) {
        let sh = &self.sh;
        cmd!(sh, "git init --quiet --initial-branch=main {dir}")
            .run()
            .unwrap();
    }

    pub fn write(&self, dir: &Path, file: &str, text: &str) {
        let path = dir.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    pub fn git(&self, dir: &Path, args: &[&str]) -> String {
        let sh = &self.sh;
        cmd!(sh, "git -C {dir} {args...}").quiet().read().unwrap()
    }

    pub fn commit_all(&self, dir: &Path, message: &str) -> String {
        self.git(dir, &["add", "--all"]);
        self.git(dir, &["commit", "--quiet", "-m", message]);
        self.git(dir, &["rev-parse", "HEAD"])
    }

    pub fn upstream_url(&self) -> String {
        format!("file://{}", self.upstream.display())
    }

    pub fn checkout(&self, project: &str) -> PathBuf {
        self.root.join("checkouts").join(project)
    }

    pub fn stack_dir(&self, project: &str) -> PathBuf {
        self.root.join("patches").join(project)
    }

    /// Writes `patches/<project>/stack.yaml` for the upstream repository.
    pub fn write_stack(&self, project: &str, base: &str, series: &[&str]) {
        let series = if series.is_empty() {
            "series: []\n".to_string()
        } else {
            let items: String = series.iter().map(|s| format!("  - {s}\n")).collect();
            format!("series:\n{items}")
        };
        let text = format!(
            "# test stack\nupstream: {}\ntrack: main\nbase: {base}\nversion: 1\n{series}",
            self.upstream_url()
        );
        std::fs::create_dir_all(self.stack_dir(project)).unwrap();
        std::fs::write(self.stack_dir(project).join("stack.yaml"), text).unwrap();
    }

    pub fn read_stack(&self, project: &str) -> String {
        std::fs::read_to_string(self.stack_dir(project).join("stack.yaml")).unwrap()
    }

    /// The `patches/<project>/` folder as (file name, bytes), sorted: for byte-identical checks.
    pub fn snapshot(&self, project: &str) -> Vec<(String, Vec<u8>)> {
        let mut out: Vec<_> = std::fs::read_dir(self.stack_dir(project))
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        out.sort();
        out
    }

    /// `snapshot` with the upstream's temp-dir URL replaced by `URL`, to compare the stacks
    /// of two worlds.
    pub fn snapshot_portable(&self, project: &str) -> Vec<(String, Vec<u8>)> {
        let url = self.upstream_url();
        self.snapshot(project)
            .into_iter()
            .map(|(n, b)| {
                let text = String::from_utf8_lossy(&b).replace(&url, "URL");
                (n, text.into_bytes())
            })
            .collect()
    }

    /// The xtask binary with the fixed environment and `--root`.
    pub fn xtask_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_xtask"));
        c.arg("--root").arg(&self.root).args(args);
        c.env("HOME", self.tmp.join("home"));
        c.env("XDG_CONFIG_HOME", self.tmp.join("home/.config"));
        c.env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .env_remove("XTASK_INDEX_URL");
        for (k, v) in fixed_env() {
            c.env(k, v);
        }
        c.stdin(Stdio::null());
        c
    }

    /// Runs xtask with one more environment variable.
    pub fn xtask_env(&self, args: &[&str], key: &str, value: &str) -> Run {
        Run::from(self.xtask_cmd(args).env(key, value).output().unwrap())
    }

    pub fn xtask(&self, args: &[&str]) -> Run {
        Run::from(self.xtask_cmd(args).output().unwrap())
    }

    /// Runs xtask and fails the test, showing its output, unless it succeeds.
    pub fn ok(&self, args: &[&str]) -> Run {
        let run = self.xtask(args);
        assert_eq!(
            run.code, 0,
            "xtask {args:?} failed:\n{}\n{}",
            run.stdout, run.stderr
        );
        run
    }

    /// Runs xtask and fails the test unless it fails with `code`.
    pub fn fails(&self, args: &[&str], code: i32) -> Run {
        let run = self.xtask(args);
        assert_eq!(
            run.code, code,
            "xtask {args:?}: wanted exit {code}:\n{}\n{}",
            run.stdout, run.stderr
        );
        run
    }

    /// Commits a change in the checkout with an `Upstream-Status` trailer.
    pub fn commit_in_checkout(
        &self,
        project: &str,
        file: &str,
        text: &str,
        subject: &str,
    ) -> String {
        let co = self.checkout(project);
        self.write(&co, file, text);
        self.commit_all(
            &co,
            &format!("{subject}\n\nWhy this change is needed.\n\nUpstream-Status: Pending"),
        )
    }

    pub fn head(&self, project: &str) -> String {
        self.git(&self.checkout(project), &["rev-parse", "HEAD"])
    }

    /// Subjects of `refs/xtask/base..HEAD`, oldest first.
    pub fn stack_subjects(&self, project: &str) -> Vec<String> {
        let out = self.git(
            &self.checkout(project),
            &["log", "--reverse", "--format=%s", "refs/xtask/base..HEAD"],
        );
        out.lines().map(str::to_string).collect()
    }
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

pub fn numbered_lines(from: usize, to: usize) -> String {
    (from..=to).map(|i| format!("line {i}\n")).collect()
}

/// A world with stack `demo` on the upstream's base and a series of three patches, made by
/// committing in the checkout and saving.
pub fn world_with_three_patches(name: &str) -> (World, String) {
    let w = World::new(name);
    let base = w.git(&w.upstream, &["rev-parse", "HEAD"]);
    w.write_stack("demo", &base, &[]);
    w.ok(&["sync"]);
    w.commit_in_checkout(
        "demo",
        "src/lib.c",
        &numbered_lines(1, 30).replace("line 5\n", "line five\n"),
        "Spell out line five",
    );
    w.commit_in_checkout("demo", "NEWS", "news\n", "Add a NEWS file");
    w.commit_in_checkout(
        "demo",
        "docs/guide.txt",
        "guide\nmore\n",
        "Extend the guide",
    );
    w.ok(&["save", "demo"]);
    (w, base)
}
