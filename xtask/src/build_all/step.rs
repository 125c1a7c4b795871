//! The experiment's step ids as a type: what each step is and its name (`Display`, the form
//! `--only`, the cache folders and the logs use). Interpreter and target names are data from
//! `experiment.yaml` and the stacks; `experiment::specs` refuses names that would collide.

use std::fmt;

pub use crate::manifest::Installer;
use crate::ops::interpreters::cpython_step;

/// One step of the experiment.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StepId {
    /// `cpython/<interpreter>`
    CPython(String),
    /// `maturin`: the maturin role's stack, built once.
    Maturin,
    /// `env/<interpreter>`: a venv with the toolchain from the stacks.
    Env(String),
    /// `<target>/wheel`: the target's one wheel.
    Wheel(String),
    /// `<target>/install/<interpreter>/<installer>`: a fresh venv, the wheel installed, the
    /// import checked.
    Install(String, String, Installer),
    /// `<target>/test/<interpreter>`: the target's own test suite on one interpreter.
    Test(String, String),
    /// `<target>/abi3-wheel`: an abi3-only wheel built with the released toolchain.
    Abi3Wheel(String),
    /// `<target>/refusal/<interpreter>/<installer>`: that wheel refused or accepted, as the
    /// interpreter's ABI says.
    Refusal(String, String, Installer),
}

impl StepId {
    /// The step's name as one path segment (`cpython-3.15t`), for log files and scratch
    /// folders.
    pub fn slug(&self) -> String {
        self.to_string().replace('/', "-")
    }
}

impl fmt::Display for StepId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StepId::CPython(i) => f.write_str(&cpython_step(i)),
            StepId::Maturin => f.write_str("maturin"),
            StepId::Env(i) => write!(f, "env/{i}"),
            StepId::Wheel(t) => write!(f, "{t}/wheel"),
            StepId::Install(t, i, installer) => write!(f, "{t}/install/{i}/{installer}"),
            StepId::Test(t, i) => write!(f, "{t}/test/{i}"),
            StepId::Abi3Wheel(t) => write!(f, "{t}/abi3-wheel"),
            StepId::Refusal(t, i, installer) => write!(f, "{t}/refusal/{i}/{installer}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_whatever_the_target_is_called() {
        let cases = [
            (StepId::CPython("3.15t".into()), "cpython/3.15t"),
            (StepId::Maturin, "maturin"),
            (StepId::Env("3.16".into()), "env/3.16"),
            (StepId::Wheel("cryptography".into()), "cryptography/wheel"),
            (StepId::Wheel("env".into()), "env/wheel"),
            (StepId::Wheel("cpython".into()), "cpython/wheel"),
            (
                StepId::Install("env".into(), "3.15".into(), Installer::Uv),
                "env/install/3.15/uv",
            ),
            (
                StepId::Test("test".into(), "3.16t".into()),
                "test/test/3.16t",
            ),
            (StepId::Abi3Wheel("b".into()), "b/abi3-wheel"),
            (
                StepId::Refusal("b".into(), "3.16t".into(), Installer::Pip),
                "b/refusal/3.16t/pip",
            ),
        ];
        for (id, name) in cases {
            assert_eq!(id.to_string(), name);
        }
        assert_eq!(
            StepId::Install("x".into(), "3.15t".into(), Installer::Uv).slug(),
            "x-install-3.15t-uv"
        );
    }
}
