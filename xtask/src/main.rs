//! Project automation for anyboot, run as `cargo xtask <task>` (the cargo-xtask convention).
//!
//! Tasks:
//! - `kernels [--flavour cloud|generic|all]`: fetch Debian's kernels into a cache outside git.
//! - `ci`: fmt, clippy, kernels, test (kernels and oracles required), doc — what CI runs.
//! - `demo`: inspect Debian's cloud kernel with the release build.
//! - `bench [--only inspect|run] [--runs N] [--launches N] [--qemu-launches N] [--jobs P]`:
//!   `anyboot inspect --json` against the shell pipeline users run today; `anyboot run` against
//!   QEMU on the PVH probe guest, and the launch rate.
//! - `fuzz [--seconds N | --runs N] [--jobs J] [--sanitizer address|none] [TARGET...]`: the
//!   cargo-fuzz targets in `fuzz/`.

mod bench;
mod bench_run;
mod ci;
mod demo;
mod fuzz;
mod kernels;
mod util;

use anyhow::{Result, bail};

const USAGE: &str = "\
usage: cargo xtask <task> [options]

tasks:
  kernels [--flavour cloud|generic|all]   fetch Debian kernels into the cache (default: all)
  ci                                      fmt, clippy, kernels, test, doc (stops at first failure)
  demo                                    run `anyboot inspect` on Debian's cloud kernel
  bench [--only inspect|run] [--runs N] [--launches N] [--qemu-launches N] [--jobs P]
                                          inspect: `anyboot inspect --json` vs extract+readelf
                                          (N runs each, default 7); run: `anyboot run` vs QEMU
                                          microvm on the pvh32 probe guest (N runs each, default
                                          30), then the launch rate: N launches (default 500,
                                          QEMU 100) with P in flight (default 2 x cores)

  fuzz [--seconds N | --runs N] [--jobs J] [--sanitizer address|none] [TARGET...]
                                          build the cargo-fuzz targets (nightly), seed them and
                                          run each for N seconds (default 60) or N executions,
                                          J at a time (default 2), under ASan (default) or no
                                          sanitizer; prints executions and coverage

environment:
  ANYBOOT_KERNELS   kernel cache folder (default $XDG_CACHE_HOME/anyboot/kernels,
                    else $HOME/.cache/anyboot/kernels)";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match dispatch(&args) {
        Ok(()) => {}
        Err(err) => {
            eprintln!("xtask: error: {err:#}");
            std::process::exit(1);
        }
    }
}

fn dispatch(args: &[String]) -> Result<()> {
    let Some((task, rest)) = args.split_first() else {
        println!("{USAGE}");
        return Ok(());
    };
    match task.as_str() {
        "kernels" => kernels::cmd(rest),
        "ci" => {
            no_args(task, rest)?;
            ci::cmd()
        }
        "demo" => {
            no_args(task, rest)?;
            demo::cmd()
        }
        "bench" => bench::cmd(rest),
        "fuzz" => fuzz::cmd(rest),
        "help" | "-h" | "--help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown task `{other}`\n\n{USAGE}"),
    }
}

fn no_args(task: &str, rest: &[String]) -> Result<()> {
    if let Some(arg) = rest.first() {
        bail!("`{task}` takes no arguments, got `{arg}`");
    }
    Ok(())
}
