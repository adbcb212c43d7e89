//! `cargo xtask demo`: show anyboot on a real Debian kernel.
//!
//! The demo is a list of named steps sharing a [`Demo`] state; to extend it, write a
//! `fn(&mut Demo) -> Result<()>` and add it to [`STEPS`].

use anyhow::{Context, Result};

use crate::kernels::{self, Kernel};
use crate::util::{cargo, run};

/// State shared by the steps.
#[derive(Debug, Default)]
pub struct Demo {
    /// Debian's cloud kernel, set by [`fetch_cloud_kernel`].
    cloud: Option<Kernel>,
}

impl Demo {
    fn cloud(&self) -> Result<&Kernel> {
        self.cloud
            .as_ref()
            .context("no cloud kernel: the `fetch cloud kernel` step must run first")
    }
}

type StepFn = fn(&mut Demo) -> Result<()>;

/// The demo, in order.
const STEPS: &[(&str, StepFn)] = &[
    ("fetch cloud kernel", fetch_cloud_kernel),
    ("anyboot inspect", inspect),
    ("anyboot inspect --json", inspect_json),
];

/// Runs every step in order, stopping at the first failure.
pub fn cmd() -> Result<()> {
    let mut demo = Demo::default();
    let total = STEPS.len();
    for (i, (name, step)) in STEPS.iter().enumerate() {
        println!("\n==> demo [{}/{total}] {name}", i + 1);
        step(&mut demo).with_context(|| format!("demo step `{name}`"))?;
    }
    Ok(())
}

fn fetch_cloud_kernel(demo: &mut Demo) -> Result<()> {
    let cloud = kernels::select("cloud")?;
    let kernel = kernels::ensure(&cloud)?
        .pop()
        .context("`kernels --flavour cloud` returned no kernel")?;
    println!(
        "{} {} ({})",
        kernel.package,
        kernel.version,
        kernel.vmlinuz.display()
    );
    demo.cloud = Some(kernel);
    Ok(())
}

/// `cargo run --release -q -- <args>` for the anyboot binary.
fn anyboot(args: &[&std::ffi::OsStr]) -> Result<()> {
    run(cargo()
        .args(["run", "--release", "-q", "--bin", "anyboot", "--"])
        .args(args))
}

fn inspect(demo: &mut Demo) -> Result<()> {
    let vmlinuz = &demo.cloud()?.vmlinuz;
    anyboot(&["inspect".as_ref(), vmlinuz.as_os_str()])
}

fn inspect_json(demo: &mut Demo) -> Result<()> {
    let vmlinuz = &demo.cloud()?.vmlinuz;
    anyboot(&["inspect".as_ref(), "--json".as_ref(), vmlinuz.as_os_str()])
}
