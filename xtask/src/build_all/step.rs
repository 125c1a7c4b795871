//! The experiment's step ids as a type: what each step is, its name (`Display`, the form
//! `--only`, the cache folders and the logs use) and back (`FromStr`). A target's name is
//! data: a target called `env` or `test` is still a target.

use std::fmt;
use std::str::FromStr;

use anyhow::{Result, bail};

pub use crate::ops::interpreters::Flavour;
use crate::ops::interpreters::cpython_step;

/// How a test cell installs the wheel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Installer {
    Pip,
    Uv,
}

impl Installer {
    pub const ALL: [Installer; 2] = [Installer::Pip, Installer::Uv];

    pub fn as_str(self) -> &'static str {
        match self {
            Installer::Pip => "pip",
            Installer::Uv => "uv",
        }
    }
}

impl fmt::Display for Installer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Installer {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Installer> {
        match Installer::ALL.into_iter().find(|i| i.as_str() == s) {
            Some(i) => Ok(i),
            None => bail!("no installer `{s}` (pip, uv)"),
        }
    }
}

/// One step of the experiment.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StepId {
    /// `cpython/<flavour>`
    CPython(Flavour),
    /// `maturin`
    Maturin,
    /// `env/<flavour>`: a venv with the toolchain from the stacks.
    Env(Flavour),
    /// `<target>/wheel`
    Wheel(String),
    /// `<target>/test/<flavour>/<installer>`: one cell of the matrix.
    Test(String, Flavour, Installer),
}

impl StepId {
    /// The step's name as one path segment (`cpython-default`), for log files and scratch
    /// folders.
    pub fn slug(&self) -> String {
        self.to_string().replace('/', "-")
    }
}

impl fmt::Display for StepId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StepId::CPython(flavour) => f.write_str(&cpython_step(*flavour)),
            StepId::Maturin => f.write_str("maturin"),
            StepId::Env(flavour) => write!(f, "env/{flavour}"),
            StepId::Wheel(target) => write!(f, "{target}/wheel"),
            StepId::Test(target, flavour, installer) => {
                write!(f, "{target}/test/{flavour}/{installer}")
            }
        }
    }
}

impl FromStr for StepId {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<StepId> {
        let parts: Vec<&str> = s.split('/').collect();
        // The fixed steps first, each only when its second part is a flavour; everything
        // else is read as a target's step, so no target name is taken for a step kind.
        let id = match parts.as_slice() {
            ["maturin"] => Some(StepId::Maturin),
            ["cpython", f] => f.parse().ok().map(StepId::CPython),
            ["env", f] => f.parse().ok().map(StepId::Env),
            _ => None,
        };
        if let Some(id) = id {
            return Ok(id);
        }
        match parts.as_slice() {
            [target, "wheel"] if !target.is_empty() => Ok(StepId::Wheel(target.to_string())),
            [target, "test", f, i] if !target.is_empty() => {
                Ok(StepId::Test(target.to_string(), f.parse()?, i.parse()?))
            }
            _ => bail!(
                "`{s}` is not a build step (cpython/<flavour>, maturin, env/<flavour>, <target>/wheel, <target>/test/<flavour>/<installer>)"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_whatever_the_target_is_called() {
        use Flavour::*;
        let cases = [
            (StepId::CPython(Default), "cpython/default"),
            (StepId::CPython(Freethreaded), "cpython/freethreaded"),
            (StepId::Maturin, "maturin"),
            (StepId::Env(Freethreaded), "env/freethreaded"),
            (StepId::Wheel("cryptography".into()), "cryptography/wheel"),
            (StepId::Wheel("env".into()), "env/wheel"),
            (StepId::Wheel("test".into()), "test/wheel"),
            (StepId::Wheel("cpython".into()), "cpython/wheel"),
            (StepId::Wheel("maturin".into()), "maturin/wheel"),
            (
                StepId::Test("env".into(), Default, Installer::Uv),
                "env/test/default/uv",
            ),
            (
                StepId::Test("test".into(), Freethreaded, Installer::Pip),
                "test/test/freethreaded/pip",
            ),
        ];
        for (id, name) in cases {
            assert_eq!(id.to_string(), name);
            assert_eq!(name.parse::<StepId>().unwrap(), id, "{name}");
        }
        assert_eq!(
            StepId::Test("x".into(), Freethreaded, Installer::Uv).slug(),
            "x-test-freethreaded-uv"
        );
    }

    #[test]
    fn what_is_not_a_step() {
        for bad in [
            "",
            "cpython",
            "cpython/nogil",
            "/wheel",
            "x/test/default",
            "x/test/default/conda",
            "x/y/z",
        ] {
            assert!(bad.parse::<StepId>().is_err(), "{bad:?}");
        }
    }
}
