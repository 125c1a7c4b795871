//! What a person sees while build-all runs: a line per running step with its elapsed time and
//! a bar against its last duration on a terminal, plain lines otherwise, nothing with
//! `--quiet`.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Terminal,
    Plain,
    Quiet,
}

impl Mode {
    pub fn detect(quiet: bool) -> Mode {
        if quiet {
            Mode::Quiet
        } else if std::io::stdout().is_terminal() {
            Mode::Terminal
        } else {
            Mode::Plain
        }
    }
}

pub struct Progress {
    mode: Mode,
    start: Instant,
    running: BTreeMap<String, Instant>,
    /// Seconds each step took last time, for the bars.
    pub expected: BTreeMap<String, f64>,
    drawn: usize,
}

impl Progress {
    pub fn new(mode: Mode) -> Progress {
        Progress {
            mode,
            start: Instant::now(),
            running: BTreeMap::new(),
            expected: BTreeMap::new(),
            drawn: 0,
        }
    }

    /// A step started, granted `cores` of the budget.
    pub fn started(&mut self, step: &str, cores: usize) {
        self.running.insert(step.to_string(), Instant::now());
        match self.mode {
            Mode::Plain => line(&format!(
                "[{:>7.1}s] start   {step} ({cores} core{})",
                self.start.elapsed().as_secs_f64(),
                if cores == 1 { "" } else { "s" }
            )),
            Mode::Terminal => self.redraw(),
            Mode::Quiet => {}
        }
    }

    pub fn finished(&mut self, step: &str, how: &str, seconds: Option<f64>) {
        self.running.remove(step);
        let took = seconds.map_or(String::new(), |s| format!(" ({s:.1} s)"));
        match self.mode {
            Mode::Quiet => {}
            Mode::Plain => line(&format!(
                "[{:>7.1}s] {how:<7} {step}{took}",
                self.start.elapsed().as_secs_f64()
            )),
            Mode::Terminal => {
                self.erase();
                line(&format!("{how:<7} {step}{took}"));
                self.redraw();
            }
        }
    }

    pub fn tick(&mut self) {
        if self.mode == Mode::Terminal {
            self.redraw();
        }
    }

    pub fn clear(&mut self) {
        if self.mode == Mode::Terminal {
            self.erase();
        }
    }

    fn erase(&mut self) {
        let mut out = std::io::stdout();
        for _ in 0..self.drawn {
            let _ = write!(out, "\x1b[1A\x1b[2K");
        }
        self.drawn = 0;
        let _ = out.flush();
    }

    fn redraw(&mut self) {
        self.erase();
        let mut out = std::io::stdout();
        for (step, since) in &self.running {
            let elapsed = since.elapsed().as_secs_f64();
            let _ = writeln!(
                out,
                "{}",
                bar_line(step, elapsed, self.expected.get(step).copied())
            );
            self.drawn += 1;
        }
        let _ = out.flush();
    }
}

/// `cpython/default  [=======>        ]  81.2s` (the bar only when the last duration is known).
pub fn bar_line(step: &str, elapsed: f64, expected: Option<f64>) -> String {
    const WIDTH: usize = 24;
    let bar = match expected {
        Some(total) if total > 0.0 => {
            let filled = ((elapsed / total).min(1.0) * WIDTH as f64) as usize;
            format!("[{}{}]", "=".repeat(filled), " ".repeat(WIDTH - filled))
        }
        _ => format!("[{}]", " ".repeat(WIDTH)),
    };
    format!("{step:<28} {bar} {elapsed:>6.1}s")
}

/// One progress line. Progress is a courtesy: a reader that went away or a full disk must not
/// stop the build, so write errors are dropped here (the report is what counts).
fn line(text: &str) {
    let _ = crate::fsx::print_stdout(&format!("{text}\n"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars() {
        assert_eq!(
            bar_line("maturin", 30.0, Some(60.0)),
            format!(
                "{:<28} [{}{}]   30.0s",
                "maturin",
                "=".repeat(12),
                " ".repeat(12)
            )
        );
        assert!(bar_line("maturin", 90.0, Some(60.0)).contains(&"=".repeat(24)));
        assert!(bar_line("x", 1.0, None).contains(&format!("[{}]", " ".repeat(24))));
    }
}
