//! `cargo xtask ci`: the whole CI gate, runnable locally. `.ci/run` only installs packages and
//! calls this.
//!
//! Steps, in order, stopping at the first failure:
//! 1. `cargo fmt --all -- --check`
//! 2. `cargo clippy --workspace --all-targets -- -D warnings`
//! 3. `cargo xtask kernels` (called in-process)
//! 4. `cargo test --workspace` with `ANYBOOT_REQUIRE_KERNELS=1 ANYBOOT_REQUIRE_ORACLES=1`
//! 5. `cargo doc --workspace --no-deps` with `RUSTDOCFLAGS=-Dwarnings`
//! 6. `cargo fmt --manifest-path fuzz/Cargo.toml --check` and `cargo xtask fuzz --seconds 15`:
//!    every fuzz target builds (nightly) and runs 15 s from its seeds without a crash. Without
//!    a nightly toolchain this step says SKIPPED loudly (the fuzz workspace needs one).

use std::process::Command;
use std::time::Instant;

use anyhow::Result;

use crate::fuzz;
use crate::kernels;
use crate::util::{cargo, run};

/// What a step does.
enum Action {
    /// Run this cargo command with inherited stdio.
    Cargo(Box<Command>),
    /// Fetch every Debian kernel, as `cargo xtask kernels` does.
    Kernels,
    /// The fuzz smoke run, as `cargo xtask fuzz --seconds N` does.
    Fuzz(u64),
}

struct Step {
    name: &'static str,
    /// The command as a human would type it.
    text: String,
    action: Action,
}

impl Step {
    fn cargo(name: &'static str, args: &[&str], envs: &[(&str, &str)]) -> Step {
        let mut cmd = cargo();
        cmd.args(args).envs(envs.iter().copied());
        let text = envs
            .iter()
            .map(|(k, v)| format!("{k}={v} "))
            .chain(std::iter::once(format!("cargo {}", args.join(" "))))
            .collect();
        Step {
            name,
            text,
            action: Action::Cargo(Box::new(cmd)),
        }
    }

    fn run(&mut self) -> Result<()> {
        match &mut self.action {
            Action::Cargo(cmd) => run(cmd),
            Action::Kernels => {
                for kernel in kernels::ensure(&kernels::FLAVOURS)? {
                    println!("{:<8} {}", kernel.flavour, kernel.vmlinuz.display());
                }
                Ok(())
            }
            Action::Fuzz(secs) => {
                // Formatting needs no nightly: the stable rustfmt checks the fuzz crate too.
                run(cargo().args(["fmt", "--manifest-path", "fuzz/Cargo.toml", "--", "--check"]))?;
                if !fuzz::nightly_available() {
                    println!(
                        "SKIPPED: no nightly toolchain (`cargo +nightly` fails): the fuzz smoke run did not run"
                    );
                    return Ok(());
                }
                fuzz::cmd(&["--seconds".to_owned(), secs.to_string()])
            }
        }
    }
}

fn steps() -> Vec<Step> {
    vec![
        Step::cargo("fmt", &["fmt", "--all", "--", "--check"], &[]),
        Step::cargo(
            "clippy",
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
            &[],
        ),
        Step {
            name: "kernels",
            text: "cargo xtask kernels".to_owned(),
            action: Action::Kernels,
        },
        Step::cargo(
            "test",
            &["test", "--workspace"],
            &[
                ("ANYBOOT_REQUIRE_KERNELS", "1"),
                ("ANYBOOT_REQUIRE_ORACLES", "1"),
            ],
        ),
        Step::cargo(
            "doc",
            &["doc", "--workspace", "--no-deps"],
            &[("RUSTDOCFLAGS", "-Dwarnings")],
        ),
        Step {
            name: "fuzz",
            text: "cargo xtask fuzz --seconds 15".to_owned(),
            action: Action::Fuzz(15),
        },
    ]
}

/// Runs every step; exits the process with status 1 and a one-line summary on the first failure.
pub fn cmd() -> Result<()> {
    let mut steps = steps();
    let total = steps.len();
    let started = Instant::now();
    for (i, step) in steps.iter_mut().enumerate() {
        let n = i + 1;
        println!("==> ci [{n}/{total}] {}: {}", step.name, step.text);
        let t = Instant::now();
        let result = step.run();
        let secs = t.elapsed().as_secs_f64();
        match result {
            Ok(()) => println!("==> ci [{n}/{total}] {}: ok ({secs:.1}s)", step.name),
            Err(err) => {
                // The cause goes first (it may span lines); the summary stays the last line.
                eprintln!("{err:#}");
                eprintln!(
                    "xtask ci: FAILED at step {n}/{total} `{}` after {secs:.1}s",
                    step.name
                );
                std::process::exit(1);
            }
        }
    }
    println!(
        "==> ci: all {total} steps passed ({:.1}s)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
