//! Who a branch for upstream is by: the proposer's git identity (never a placeholder), and
//! rewriting commits made by the tool so they carry it.

use anyhow::{Context, Result, bail};
use xshell::cmd;

use super::Checkout;
use super::cli::{self, FIXED_CONFIG};

/// A name and an email, as git records them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ident {
    pub name: String,
    pub email: String,
}

/// The author and committer of the proposer's commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposer {
    pub author: Ident,
    pub committer: Ident,
}

const HOW_TO_SET: &str = "set yours with `git config --global user.name \"Your Name\"` and `git config --global user.email you@example.org`";

impl Checkout<'_> {
    /// The identity git would commit with here (the `GIT_AUTHOR_*`/`GIT_COMMITTER_*`
    /// variables, else `user.name` and `user.email`), never one git guesses from the host:
    /// a pull request must carry a name and an address its proposer chose.
    pub fn proposer(&self) -> Result<Proposer> {
        let (sh, dir) = (self.sh, &self.dir);
        let ident = |cmd: xshell::Cmd<'_>| -> Result<Ident> {
            let out = cli::output(cmd)?;
            let text = String::from_utf8_lossy(&out.stdout);
            match (out.status.success(), parse_ident(&text)) {
                (true, Some(i)) => Ok(i),
                _ => {
                    bail!("no git identity to commit the pull-request branches with; {HOW_TO_SET}")
                }
            }
        };
        let author = ident(cmd!(
            sh,
            "git -C {dir} {FIXED_CONFIG...} -c user.useConfigOnly=true var GIT_AUTHOR_IDENT"
        ))?;
        let committer = ident(cmd!(
            sh,
            "git -C {dir} {FIXED_CONFIG...} -c user.useConfigOnly=true var GIT_COMMITTER_IDENT"
        ))?;
        Ok(Proposer { author, committer })
    }
}

/// `Name <email> 1234567890 +0000` as git prints it: the name and the email.
fn parse_ident(text: &str) -> Option<Ident> {
    let line = text.lines().next()?;
    let (name, rest) = line.split_once(" <")?;
    let (email, _) = rest.split_once('>')?;
    (!name.trim().is_empty() && !email.trim().is_empty()).then(|| Ident {
        name: name.trim().to_string(),
        email: email.to_string(),
    })
}

/// Rewrites the commits of `base..tip` (oldest first) with `who` as committer, and as
/// author of all but the first `keep` commits, which keep the author they record. Dates
/// are kept, so the same commits give the same ids on every run. Returns the new tip.
pub fn restamp(
    repo: &git2::Repository,
    base: git2::Oid,
    tip: git2::Oid,
    who: &Proposer,
    keep: usize,
) -> Result<git2::Oid> {
    let mut parent = repo.find_commit(base)?;
    for (i, (id, _)) in super::commits_between(repo, base, tip)?
        .into_iter()
        .enumerate()
    {
        let c = repo.find_commit(id)?;
        let sig = |i: &Ident, when: git2::Time| git2::Signature::new(&i.name, &i.email, &when);
        let author = if i < keep {
            c.author().to_owned()
        } else {
            sig(&who.author, c.author().when())?
        };
        let committer = sig(&who.committer, c.committer().when())?;
        let message = c
            .message_raw()
            .with_context(|| format!("the message of {id} is not UTF-8"))?;
        let new = repo.commit(None, &author, &committer, message, &c.tree()?, &[&parent])?;
        parent = repo.find_commit(new)?;
    }
    Ok(parent.id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idents() {
        assert_eq!(
            parse_ident("A U Thor <a@example.org> 981173106 +0000\n"),
            Some(Ident {
                name: "A U Thor".into(),
                email: "a@example.org".into()
            })
        );
        assert_eq!(parse_ident(" <a@b> 1 +0000"), None);
        assert_eq!(parse_ident("nobody"), None);
    }
}
