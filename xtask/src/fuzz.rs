//! `cargo xtask fuzz`: build the cargo-fuzz targets in `fuzz/` (nightly), seed their corpora
//! from the fixture generators, run each for a time or a number of executions, and report
//! executions, coverage and crashes per target.
//!
//! Corpora live in `fuzz/corpus/<target>/` and grow across runs; crashes are written to
//! `fuzz/artifacts/<target>/` and each target's libFuzzer log to `fuzz/logs/<target>.log` (all
//! three ignored by git).

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::util::{run, workspace_root};

/// Every target, in the order they start (the slowest first, so that parallel slots end
/// together).
pub const TARGETS: [&str; 9] = [
    "payload",
    "bzimage",
    "plan",
    "elf_notes",
    "multiboot",
    "emit_xl",
    "emit_qemu",
    "emit_firecracker",
    "emit_cloud_hypervisor",
];

/// The sanitizer the targets are built with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sanitizer {
    /// AddressSanitizer (cargo-fuzz's default): catches memory errors in unsafe code.
    Address,
    /// None: more executions per second, for targets whose code under test is safe Rust.
    /// Built into its own target folder so that the two builds do not replace each other.
    None,
}

impl Sanitizer {
    fn args(self) -> Vec<&'static str> {
        match self {
            Sanitizer::Address => vec![],
            Sanitizer::None => vec!["-s", "none", "--target-dir", "target/no-sanitizer"],
        }
    }
}

/// How long each target runs.
#[derive(Debug, Clone, Copy)]
pub enum Budget {
    /// `-max_total_time`.
    Seconds(u64),
    /// `-runs`.
    Runs(u64),
}

/// What one target's run produced.
#[derive(Debug, Default)]
pub struct Outcome {
    /// libFuzzer's `stat::number_of_executed_units`.
    pub execs: u64,
    /// Edge coverage (`cov:`) at the end.
    pub cov: u64,
    /// Features (`ft:`) at the end.
    pub ft: u64,
    /// Corpus entries at the end.
    pub corpus: u64,
    /// Wall time.
    pub secs: f64,
    /// A crash, leak, timeout or OOM: the artifact libFuzzer wrote, or its summary line.
    pub failure: Option<String>,
}

/// The cargo-fuzz release installed when none is (the one the targets were written with).
const CARGO_FUZZ_VERSION: &str = "0.13.2";

const USAGE: &str = "usage: cargo xtask fuzz [--seconds N | --runs N] [--jobs J] \
                     [--sanitizer address|none] [TARGET...]";

/// `cargo xtask fuzz [--seconds N | --runs N] [--jobs J] [TARGET...]`.
pub fn cmd(args: &[String]) -> Result<()> {
    let mut budget = Budget::Seconds(60);
    let mut jobs = 2usize;
    let mut sanitizer = Sanitizer::Address;
    let mut targets = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut num = |what: &str| -> Result<u64> {
            let v = it
                .next()
                .with_context(|| format!("{what} needs a value\n{USAGE}"))?;
            v.parse()
                .with_context(|| format!("{what} {v}: not a number"))
        };
        match a.as_str() {
            // libFuzzer reads -max_total_time=0 as "no limit".
            "--seconds" => budget = Budget::Seconds(num("--seconds")?.max(1)),
            "--runs" => budget = Budget::Runs(num("--runs")?),
            "--jobs" => jobs = usize::try_from(num("--jobs")?)?.max(1),
            "--sanitizer" => {
                sanitizer = match it.next().map(String::as_str) {
                    Some("address") => Sanitizer::Address,
                    Some("none") => Sanitizer::None,
                    other => bail!("--sanitizer address|none, got {other:?}\n{USAGE}"),
                }
            }
            t if TARGETS.contains(&t) => targets.push(t),
            other => bail!(
                "unknown argument or target `{other}`\n{USAGE}\ntargets: {}",
                TARGETS.join(" ")
            ),
        }
    }
    if targets.is_empty() {
        targets = TARGETS.to_vec();
    }
    let results = fuzz(&targets, budget, jobs, sanitizer)?;
    report(&results);
    let failed: Vec<_> = results
        .iter()
        .filter(|(_, o)| o.failure.is_some())
        .collect();
    if !failed.is_empty() {
        for (t, o) in &failed {
            eprintln!("xtask fuzz: {t}: {}", o.failure.as_deref().unwrap_or(""));
        }
        bail!("{} of {} targets failed", failed.len(), results.len());
    }
    Ok(())
}

/// Whether `cargo +nightly` works here.
pub fn nightly_available() -> bool {
    Command::new("cargo")
        .args(["+nightly", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Install cargo-fuzz from crates.io if `cargo +nightly fuzz` is missing.
fn ensure_cargo_fuzz() -> Result<()> {
    if !nightly_available() {
        bail!("the fuzz targets need a nightly toolchain (`rustup toolchain install nightly`)");
    }
    let ok = Command::new("cargo")
        .args(["+nightly", "fuzz", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        println!("==> fuzz: installing cargo-fuzz from crates.io");
        run(Command::new("cargo").args([
            "install",
            "cargo-fuzz",
            "--locked",
            "--version",
            CARGO_FUZZ_VERSION,
        ]))?;
    }
    Ok(())
}

fn fuzz_dir() -> PathBuf {
    workspace_root().join("fuzz")
}

/// Build, seed and run `targets`, `jobs` at a time.
pub fn fuzz(
    targets: &[&str],
    budget: Budget,
    jobs: usize,
    sanitizer: Sanitizer,
) -> Result<Vec<(String, Outcome)>> {
    ensure_cargo_fuzz()?;
    let dir = fuzz_dir();
    println!(
        "==> fuzz: building {} targets (nightly, release, debug assertions)",
        targets.len()
    );
    run(Command::new("cargo")
        .current_dir(&dir)
        .args(["+nightly", "fuzz", "build", "-O", "--debug-assertions"])
        .args(sanitizer.args()))?;
    seed(&dir).context("writing seed inputs")?;
    fs::create_dir_all(dir.join("logs"))?;
    let mut queue: Vec<&str> = targets.iter().rev().copied().collect();
    let mut running: Vec<(String, Child, Instant)> = Vec::new();
    let mut results = Vec::new();
    while !queue.is_empty() || !running.is_empty() {
        while running.len() < jobs {
            let Some(t) = queue.pop() else { break };
            println!("==> fuzz: {t}: {}", describe(budget));
            match spawn(&dir, t, budget, sanitizer) {
                Ok(child) => running.push((t.to_owned(), child, Instant::now())),
                Err(e) => {
                    // Leave no fuzzer running behind us.
                    for (_, mut c, _) in running {
                        let _ = c.kill();
                        let _ = c.wait();
                    }
                    return Err(e);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(200));
        let mut i = 0;
        while i < running.len() {
            if let Some(status) = running[i].1.try_wait()? {
                let (t, _, started) = running.remove(i);
                let log = fs::read_to_string(dir.join("logs").join(format!("{t}.log")))
                    .unwrap_or_default();
                let mut o = parse_log(&log);
                o.secs = started.elapsed().as_secs_f64();
                if !status.success() && o.failure.is_none() {
                    o.failure = Some(format!(
                        "libFuzzer exited with {status}; see fuzz/logs/{t}.log"
                    ));
                }
                println!(
                    "==> fuzz: {t}: {} executions, cov {}, {}",
                    o.execs,
                    o.cov,
                    if o.failure.is_some() { "FAILED" } else { "ok" }
                );
                results.push((t, o));
            } else {
                i += 1;
            }
        }
    }
    results.sort_by_key(|(t, _)| TARGETS.iter().position(|x| x == t));
    Ok(results)
}

fn describe(b: Budget) -> String {
    match b {
        Budget::Seconds(s) => format!("{s} s"),
        Budget::Runs(n) => format!("{n} executions"),
    }
}

fn spawn(dir: &Path, target: &str, budget: Budget, sanitizer: Sanitizer) -> Result<Child> {
    let corpus = dir.join("corpus").join(target);
    fs::create_dir_all(&corpus)?;
    let log = fs::File::create(dir.join("logs").join(format!("{target}.log")))?;
    let limit = match budget {
        Budget::Seconds(s) => format!("-max_total_time={s}"),
        Budget::Runs(n) => format!("-runs={n}"),
    };
    Command::new("cargo")
        .current_dir(dir)
        .args(["+nightly", "fuzz", "run", "-O", "--debug-assertions"])
        .args(sanitizer.args())
        .arg(target)
        .arg(&corpus)
        .args([
            "--",
            &limit,
            &format!("-max_len={}", max_len(target)),
            "-timeout=20",
            "-rss_limit_mb=2048",
            "-print_final_stats=1",
        ])
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting cargo fuzz run {target}"))
}

/// The longest input for `target`: whole small images for the parsers and the planner, one
/// compressed stream for the decoders (its output is what costs), and a few strings for the
/// emitters.
fn max_len(target: &str) -> usize {
    match target {
        "payload" => 16 << 10,
        t if t.starts_with("emit_") => 4 << 10,
        _ => 64 << 10,
    }
}

/// Executions, coverage and failure from a libFuzzer log.
pub fn parse_log(log: &str) -> Outcome {
    let mut o = Outcome::default();
    let field = |line: &str, key: &str| -> Option<u64> {
        let rest = line.split(key).nth(1)?;
        rest.split(|c: char| !c.is_ascii_digit())
            .find(|s| !s.is_empty())?
            .parse()
            .ok()
    };
    for line in log.lines() {
        if let Some(n) = line.strip_prefix("stat::number_of_executed_units:") {
            o.execs = n.trim().parse().unwrap_or(0);
        }
        if line.starts_with('#') && line.contains(" cov: ") {
            o.cov = field(line, " cov: ").unwrap_or(o.cov);
            o.ft = field(line, " ft: ").unwrap_or(o.ft);
            o.corpus = field(line, " corp: ").unwrap_or(o.corpus);
        }
        // Slow units are reported with the same words but are not failures.
        if (line.contains("Test unit written to") && !line.contains("slow-unit-"))
            || line.starts_with("SUMMARY: libFuzzer")
        {
            o.failure = Some(line.trim().to_owned());
        }
    }
    o
}

fn report(results: &[(String, Outcome)]) {
    println!(
        "\n{:<24} {:>12} {:>9} {:>7} {:>7} {:>7}  result",
        "target", "executions", "exec/s", "cov", "ft", "corpus"
    );
    for (t, o) in results {
        println!(
            "{:<24} {:>12} {:>9.0} {:>7} {:>7} {:>7}  {}",
            t,
            o.execs,
            o.execs as f64 / o.secs.max(0.001),
            o.cov,
            o.ft,
            o.corpus,
            if o.failure.is_some() { "FAILED" } else { "ok" }
        );
    }
}

/// Seed inputs: the fixture generators' images (ELF with notes, bzImage, multiboot, the
/// NetBSD-like kernel, the assembled probe guests) and, for the payload decoder, the
/// fixture ELF compressed with every tool installed here.
fn seed(dir: &Path) -> Result<()> {
    use anyboot_fixtures as fx;
    let mut images: Vec<(String, Vec<u8>)> = vec![
        ("pvh64".into(), fx::pvh_elf(&fx::PvhSpec::default())),
        (
            "pvh32".into(),
            fx::pvh_elf(&fx::PvhSpec {
                is_64: false,
                entry_size: 4,
                ..Default::default()
            }),
        ),
        (
            "pvh-be".into(),
            fx::pvh_elf(&fx::PvhSpec {
                big_endian: true,
                ..Default::default()
            }),
        ),
        (
            "bzimage".into(),
            fx::bzimage(&fx::BzSpec::gzip_of(&fx::pvh_elf(&fx::PvhSpec::default()))),
        ),
        (
            "multiboot".into(),
            fx::multiboot_flat(0x40, 0x2000, 0x10_4000),
        ),
        ("netbsd".into(), fx::netbsd_like()),
    ];
    for g in fx::guests::GUESTS
        .iter()
        .chain(fx::guests::OTHER_GUESTS.iter())
    {
        if let Some(bytes) = fx::guests::guest_path(g).and_then(|p| fs::read(p).ok()) {
            images.push((format!("guest-{g}"), bytes));
        }
    }
    let write = |target: &str, name: &str, bytes: &[u8]| -> Result<()> {
        let d = dir.join("corpus").join(target);
        fs::create_dir_all(&d)?;
        fs::write(d.join(format!("seed-{name}")), bytes)?;
        Ok(())
    };
    for (name, bytes) in &images {
        for t in ["elf_notes", "bzimage", "multiboot"] {
            write(t, name, bytes)?;
        }
        // The plan target's input starts with 16 bytes of options (all zero: unset, no
        // command line); the image follows.
        let mut p = vec![0u8; 16];
        p.extend_from_slice(bytes);
        write("plan", name, &p)?;
    }
    // Payload: selector byte (index into Compression::ALL), 2-byte limit, then the stream.
    let plain = fx::pvh_elf(&fx::PvhSpec::default());
    let tools: [(&str, &[&str], u8); 7] = [
        ("gzip", &["gzip", "-9c"], 0),
        ("bzip2", &["bzip2", "-9c"], 1),
        ("lzma", &["xz", "--format=lzma", "-c"], 2),
        ("xz", &["xz", "--check=crc32", "-c"], 3),
        ("lzo", &["lzop", "-9c"], 4),
        ("lz4", &["lz4", "-l", "-9c"], 5),
        ("zstd", &["zstd", "-19c"], 6),
    ];
    for (name, argv, sel) in tools {
        let Ok(mut child) = Command::new(argv[0])
            .args(&argv[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
        else {
            continue;
        };
        child.stdin.take().context("stdin")?.write_all(&plain)?;
        let out = child.wait_with_output()?;
        // A selector in 32..48 picks the format (sel % 7) and a limit of 0xffff << 2 (256 KiB,
        // the target's largest).
        let sel = (32u8..48).find(|s| s % 7 == sel).context("selector")?;
        if out.status.success() {
            let mut s = vec![sel, 0xff, 0xff];
            s.extend_from_slice(&out.stdout);
            write("payload", name, &s)?;
        }
    }
    Ok(())
}
