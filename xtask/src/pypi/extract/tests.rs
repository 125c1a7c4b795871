//! Table tests of sdist unpacking over archives crafted here with raw tar headers.

use std::io::Write;
use std::path::PathBuf;

use super::*;

/// One member of a crafted archive. Names go into the header as raw bytes, unchecked.
#[derive(Clone, Copy)]
pub(crate) enum M<'a> {
    File(&'a str, &'a str),
    Exec(&'a str, &'a str),
    Dir(&'a str),
    Sym(&'a str, &'a str),
    Hard(&'a str, &'a str),
    Fifo(&'a str),
    Char(&'a str),
    Global,
    /// A directory header that claims `n` bytes of data (read and skipped by the reader).
    Padded(&'a str, usize),
}

/// A `.tar.gz` holding `members` in order.
pub(crate) fn archive(members: &[M]) -> Vec<u8> {
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    for m in members {
        let mut h = tar::Header::new_gnu();
        let (name, kind, data, link): (&str, EntryType, Vec<u8>, &str) = match m {
            M::File(n, t) => (n, EntryType::Regular, t.as_bytes().to_vec(), ""),
            M::Exec(n, t) => (n, EntryType::Regular, t.as_bytes().to_vec(), ""),
            M::Dir(n) => (n, EntryType::Directory, vec![], ""),
            M::Sym(n, l) => (n, EntryType::Symlink, vec![], l),
            M::Hard(n, l) => (n, EntryType::Link, vec![], l),
            M::Fifo(n) => (n, EntryType::Fifo, vec![], ""),
            M::Char(n) => (n, EntryType::Char, vec![], ""),
            M::Global => (
                "pax_global_header",
                EntryType::XGlobalHeader,
                b"52 comment=0123456789012345678901234567890123456789\n".to_vec(),
                "",
            ),
            M::Padded(n, len) => (n, EntryType::Directory, vec![0; *len], ""),
        };
        let gnu = h.as_gnu_mut().unwrap();
        gnu.name[..name.len()].copy_from_slice(name.as_bytes());
        gnu.linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        h.set_mode(if matches!(m, M::Exec(..)) {
            0o755
        } else {
            0o644
        });
        h.set_cksum();
        b.append(&h, data.as_slice()).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap()
}

struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch(name: &str) -> Scratch {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("xtask-extract-{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    Scratch(dir)
}

/// Unpacks `members` into `<scratch>/out`; the error text on refusal.
fn unpack(s: &Scratch, members: &[M]) -> std::result::Result<PathBuf, String> {
    let path = s.0.join("demo-1.0.tar.gz");
    std::fs::File::create(&path)
        .unwrap()
        .write_all(&archive(members))
        .unwrap();
    let out = s.0.join("out");
    unpack_sdist(&path, &out)
        .map(|()| out)
        .map_err(|e| format!("{e:#}"))
}

fn names(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    out.sort();
    out
}

#[test]
fn an_sdist_unpacks_without_its_top_folder() {
    let s = scratch("ok");
    let out = unpack(
        &s,
        &[
            M::Global,
            M::Dir("./demo-1.0/"),
            M::File("demo-1.0/setup.py", "print('hi')\n"),
            M::Exec("demo-1.0/bin/run", "#!/bin/sh\n"),
            M::Sym("demo-1.0/bin/setup.py", "../setup.py"),
            M::Hard("demo-1.0/copy.py", "demo-1.0/setup.py"),
            M::Dir("demo-1.0/empty/"),
        ],
    )
    .unwrap();
    assert_eq!(names(&out), ["bin", "copy.py", "empty", "setup.py"]);
    assert_eq!(
        std::fs::read_to_string(out.join("copy.py")).unwrap(),
        "print('hi')\n"
    );
    assert_eq!(
        std::fs::read_link(out.join("bin/setup.py")).unwrap(),
        Path::new("../setup.py")
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &str| std::fs::metadata(out.join(p)).unwrap().permissions().mode();
        assert_ne!(mode("bin/run") & 0o100, 0);
        assert_eq!(mode("setup.py") & 0o100, 0);
    }
    // Nothing but the archive and the result beside them.
    assert_eq!(names(&s.0), ["demo-1.0.tar.gz", "out"]);
}

#[test]
fn hostile_members_are_refused_with_the_archive_and_member_named() {
    let ok = M::File("demo-1.0/setup.py", "x\n");
    // (members, the offending member, why)
    let table: &[(&[M], &str, &str)] = &[
        (
            &[M::File("demo-1.0//tmp/victim", "x")],
            "demo-1.0//tmp/victim",
            "absolute path once the top folder is stripped",
        ),
        (
            &[M::File("/tmp/victim", "x")],
            "/tmp/victim",
            "is an absolute path",
        ),
        (&[M::File("demo-1.0/../x", "x")], "demo-1.0/../x", "`..`"),
        (
            &[M::File("demo-1.0/a/../../x", "x")],
            "demo-1.0/a/../../x",
            "`..`",
        ),
        (
            &[M::File("demo-1.0/.git/config", "x")],
            "demo-1.0/.git/config",
            "`.git`",
        ),
        (
            &[M::File("demo-1.0/s/.GIT/hooks/x", "x")],
            "demo-1.0/s/.GIT/hooks/x",
            "`.git`",
        ),
        (
            &[M::File("demo-1.0\\..\\x", "x")],
            "demo-1.0\\..\\x",
            "backslash",
        ),
        (&[M::Fifo("demo-1.0/fifo")], "demo-1.0/fifo", "is a fifo"),
        (
            &[M::Char("demo-1.0/zero")],
            "demo-1.0/zero",
            "is a device file",
        ),
        (
            &[M::Sym("demo-1.0/l", "/etc/passwd")],
            "demo-1.0/l",
            "outside the tree",
        ),
        (
            &[M::Sym("demo-1.0/l", "../x")],
            "demo-1.0/l",
            "outside the tree",
        ),
        (
            &[M::Sym("demo-1.0/a/l", "../../x")],
            "demo-1.0/a/l",
            "outside the tree",
        ),
        (
            &[M::Sym("demo-1.0/l", ".git/config")],
            "demo-1.0/l",
            "into `.git`",
        ),
        (
            &[M::Sym("demo-1.0/l", "sub"), M::File("demo-1.0/l/x", "x")],
            "demo-1.0/l/x",
            "goes through the symlink `l`",
        ),
        (
            &[M::Sym("demo-1.0/L", "sub"), M::File("demo-1.0/l/x", "x")],
            "demo-1.0/l/x",
            "goes through the symlink `l`",
        ),
        // `t` is checked before `s` exists; `s/..` would then be the tree's parent.
        (
            &[M::Sym("demo-1.0/t", "s/.."), M::Sym("demo-1.0/s", ".")],
            "demo-1.0/t",
            "goes through the symlink `s`",
        ),
        (
            &[M::Hard("demo-1.0/h", "/etc/passwd")],
            "demo-1.0/h",
            "absolute path",
        ),
        (
            &[ok, M::Hard("demo-1.0/h", "demo-1.0/nope")],
            "demo-1.0/h",
            "not a file earlier",
        ),
        (
            &[ok, M::File("other-1.0/x", "x")],
            "other-1.0/x",
            "outside the archive's top folder `demo-1.0`",
        ),
        (
            &[ok, M::File("demo-1.0/setup.py", "y")],
            "demo-1.0/setup.py",
            "appears twice",
        ),
        (
            &[M::File("setup.py", "x")],
            "setup.py",
            "not inside the archive's top folder",
        ),
    ];
    for (members, member, why) in table {
        let s = scratch("hostile");
        let out = s.0.join("out");
        // A previous result survives a refused archive.
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(out.join("old"), "old").unwrap();
        let err = unpack(&s, members).unwrap_err();
        let archive = s.0.join("demo-1.0.tar.gz");
        assert!(
            err.contains(&format!("unpacking `{}`", archive.display()))
                && err.contains(&format!("member `{member}`"))
                && err.contains(why),
            "{member}: {err}"
        );
        assert_eq!(names(&s.0), ["demo-1.0.tar.gz", "out"], "{member}");
        assert_eq!(names(&out), ["old"], "{member}");
    }
}

#[test]
fn caps_on_size_entries_and_decompressed_bytes() {
    let limits = Limits {
        bytes: 10,
        entries: 3,
        stream: 8 << 10,
    };
    let run = |members: &[M]| {
        let s = scratch("caps");
        let path = s.0.join("a.tar.gz");
        std::fs::write(&path, archive(members)).unwrap();
        let root = s.0.join("root");
        std::fs::create_dir_all(&root).unwrap();
        unpack_into(&path, &root, limits).map_err(|e| format!("{e:#}"))
    };
    assert_eq!(
        run(&[M::File("d/a", "12345"), M::File("d/b", "12345")]),
        Ok(())
    );
    let err = run(&[M::File("d/a", "12345"), M::File("d/b", "123456")]).unwrap_err();
    assert!(
        err.contains("member `d/b`: the archive unpacks to more than 10 bytes"),
        "{err}"
    );
    // A hard link counts as its target's bytes again.
    let err = run(&[M::File("d/a", "123456"), M::Hard("d/b", "d/a")]).unwrap_err();
    assert!(err.contains("more than 10 bytes"), "{err}");
    let err = run(&[M::Dir("d/"), M::Dir("d/a/"), M::Dir("d/b/"), M::Dir("d/c/")]).unwrap_err();
    assert!(err.contains("more than 3 members"), "{err}");
    let err = run(&[M::Padded("d/", 16 << 10)]).unwrap_err();
    assert!(err.contains("unpacks to more than 8192 bytes"), "{err}");
    assert!(run(&[]).unwrap_err().contains("the archive is empty"));
}

#[test]
fn member_names_are_split_below_the_top_folder() {
    let split = |name: &str| {
        let mut top = None;
        below_top(name, &mut top).map_err(|e| e.to_string())
    };
    let v = |p: &[&str]| Ok(Some(p.iter().map(|s| s.to_string()).collect::<Vec<_>>()));
    assert_eq!(split("demo-1.0/a/b.py"), v(&["a", "b.py"]));
    assert_eq!(split("./demo-1.0/./a/"), v(&["a"]));
    assert_eq!(split("demo-1.0/"), Ok(None));
    assert_eq!(split("demo-1.0/.gitignore"), v(&[".gitignore"]));
    assert_eq!(split("demo-1.0/.github/x"), v(&[".github", "x"]));
    assert!(
        split("demo-1.0/a//b")
            .unwrap_err()
            .contains("empty path component")
    );
    assert!(split("demo-1.0/.git./x").unwrap_err().contains("`.git`"));
}
