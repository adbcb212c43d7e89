//! `cargo xtask bench [--runs N] [--only inspect|run] ...`: measurements, never assertions.
//!
//! - `inspect`: time and weigh `anyboot inspect --json` against the shell pipeline a user runs
//!   today to read a bzImage's notes (extract the payload, then `readelf -n`).
//! - `run`: `anyboot run` against QEMU on the PVH probe guest, and the launch rate: see
//!   [`crate::bench_run`].
//!
//! inspect: for each Debian kernel, after one untimed warm-up of each command (which also checks
//! that it succeeds), runs A, B, A, B, ... `N` times each. Every run is reaped with `wait4`,
//! whose `ru_maxrss` is the peak resident set of the child or of the largest of its waited-for
//! descendants — for the pipeline, the largest of `sh`, `tail`, `head`, the decompressor and
//! `readelf`. Results: an aligned table on stdout and `<target>/bench/inspect.json`.

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::bench_run;
use crate::kernels::{self, Kernel};
use crate::util::{cargo, display, run, run_captured, target_dir};

/// The user's recipe from `validation.md`: payload offset and length from the setup header via
/// `od`, `tail | head` to cut the payload without its 4-byte size trailer, decompress, `readelf -n`.
const PIPELINE: &str = r#"set -e
K="$1"; T="$2"; D="$3"
ss=$(od -An -tu1 -j $((0x1f1)) -N1 "$K")
po=$(od -An -tu4 -j $((0x248)) -N4 "$K"); pl=$(od -An -tu4 -j $((0x24c)) -N4 "$K")
tail -c +$(( (ss + 1) * 512 + po + 1 )) "$K" | head -c $((pl - 4)) | $D -dc > "$T"
readelf -n "$T" > /dev/null
"#;

/// Runs of each inspect command unless `--runs` says otherwise.
const DEFAULT_RUNS: usize = 7;
/// Sequential runs of each VMM in the run benchmark unless `--runs` says otherwise.
const DEFAULT_RUN_RUNS: usize = 30;
/// anyboot launches in the launch-rate benchmark.
const DEFAULT_LAUNCHES: usize = 500;
/// QEMU launches in the launch-rate benchmark.
const DEFAULT_QEMU_LAUNCHES: usize = 100;

const BENCH_USAGE: &str = "bench [--only inspect|run] [--runs N] [--launches N] \
                           [--qemu-launches N] [--jobs P] [--guest probe|minimal]";

/// Which benchmarks to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Only {
    Inspect,
    Run,
}

/// `cargo xtask bench`'s options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Options {
    only: Option<Only>,
    runs: Option<usize>,
    launches: usize,
    qemu_launches: usize,
    jobs: Option<usize>,
    guest: bench_run::GuestKind,
}

/// One timed run.
#[derive(Debug, Clone, Copy)]
struct Sample {
    wall_s: f64,
    maxrss_kib: u64,
}

/// All runs of one command on one kernel.
#[derive(Debug)]
struct Series {
    label: &'static str,
    command: String,
    samples: Vec<Sample>,
}

impl Series {
    fn median_wall(&self) -> f64 {
        median(self.samples.iter().map(|s| s.wall_s).collect())
    }

    fn median_rss(&self) -> f64 {
        #[allow(clippy::cast_precision_loss)] // KiB counts are far below 2^52
        median(self.samples.iter().map(|s| s.maxrss_kib as f64).collect())
    }

    fn max_rss(&self) -> u64 {
        self.samples.iter().map(|s| s.maxrss_kib).max().unwrap_or(0)
    }

    fn to_json(&self) -> Value {
        json!({
            "label": self.label,
            "command": self.command,
            "wall_s": self.samples.iter().map(|s| s.wall_s).collect::<Vec<_>>(),
            "maxrss_kib": self.samples.iter().map(|s| s.maxrss_kib).collect::<Vec<_>>(),
            "median_wall_s": self.median_wall(),
            "median_maxrss_kib": self.median_rss(),
            "max_maxrss_kib": self.max_rss(),
        })
    }
}

/// Both series for one kernel.
#[derive(Debug)]
struct KernelResult {
    kernel: Kernel,
    payload: &'static str,
    a: Series,
    b: Series,
}

/// `cargo xtask bench [--only inspect|run] [--runs N] ...`.
pub fn cmd(args: &[String]) -> Result<()> {
    let opts = parse_options(args)?;

    eprintln!("building anyboot (release)...");
    run(cargo().args(["build", "--release", "-q", "--bin", "anyboot"]))?;
    let target = target_dir()?;
    let anyboot = target.join("release/anyboot");
    let work = target.join("bench");
    fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;

    if opts.only != Some(Only::Run) {
        bench_inspect(&anyboot, &work, opts.runs.unwrap_or(DEFAULT_RUNS))?;
    }
    if opts.only != Some(Only::Inspect) {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let settings = bench_run::Settings {
            runs: opts.runs.unwrap_or(DEFAULT_RUN_RUNS),
            launches: opts.launches,
            qemu_launches: opts.qemu_launches,
            jobs: opts.jobs.unwrap_or(2 * cores),
            guest: opts.guest,
        };
        bench_run::bench(&anyboot, &work, settings)?;
    }
    Ok(())
}

/// `anyboot inspect --json` against the extract + `readelf -n` pipeline on Debian's kernels.
fn bench_inspect(anyboot: &Path, work: &Path, runs: usize) -> Result<()> {
    let mut results = Vec::new();
    for kernel in kernels::ensure(&kernels::FLAVOURS)? {
        let payload = payload_compressor(&kernel.vmlinuz)?;
        let tmp = work.join(format!("vmlinux-{}.tmp", kernel.flavour));
        eprintln!(
            "benchmarking {} ({payload} payload), {runs} runs each...",
            kernel.flavour
        );
        let result = bench_kernel(anyboot, kernel, payload, &tmp, runs);
        let _ = fs::remove_file(&tmp);
        results.push(result?);
    }

    let floor_kib = rss_floor_kib()?;
    print_table(&results);
    println!(
        "(peak RSS floor: `true` started the same way reports {:.1} MiB)",
        kib_to_mib(floor_kib)
    );
    let report = json!({
        "runs": runs,
        "maxrss_floor_kib": floor_kib,
        "anyboot": anyboot.to_string_lossy(),
        "pipeline": PIPELINE,
        "kernels": results.iter().map(|r| json!({
            "flavour": r.kernel.flavour,
            "package": r.kernel.package,
            "version": r.kernel.version,
            "vmlinuz": r.kernel.vmlinuz.to_string_lossy(),
            "sha256": r.kernel.sha256,
            "payload": r.payload,
            "a": r.a.to_json(),
            "b": r.b.to_json(),
            "ratio_a_b": {
                "median_wall": r.a.median_wall() / r.b.median_wall(),
                "median_maxrss": r.a.median_rss() / r.b.median_rss(),
            },
        })).collect::<Vec<_>>(),
    });
    let out = work.join("inspect.json");
    fs::write(&out, serde_json::to_string_pretty(&report)? + "\n")
        .with_context(|| format!("writing {}", out.display()))?;
    println!("\nwrote {}", out.display());
    Ok(())
}

fn parse_options(args: &[String]) -> Result<Options> {
    let mut opts = Options {
        only: None,
        runs: None,
        launches: DEFAULT_LAUNCHES,
        qemu_launches: DEFAULT_QEMU_LAUNCHES,
        jobs: None,
        guest: bench_run::GuestKind::Probe,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (arg.as_str(), None),
        };
        if ![
            "--only",
            "--runs",
            "--launches",
            "--qemu-launches",
            "--jobs",
            "--guest",
        ]
        .contains(&name)
        {
            bail!("unknown argument `{arg}` (usage: {BENCH_USAGE})");
        }
        let value = match inline {
            Some(v) => v,
            None => it
                .next()
                .with_context(|| format!("`{name}` needs a value (usage: {BENCH_USAGE})"))?,
        };
        let count = |zero_ok: bool| {
            value
                .parse::<usize>()
                .ok()
                .filter(|n| zero_ok || *n > 0)
                .with_context(|| {
                    let what = if zero_ok {
                        "a number"
                    } else {
                        "a positive number"
                    };
                    format!("`{name}` wants {what}, got `{value}`")
                })
        };
        match name {
            "--only" => {
                opts.only = Some(match value {
                    "inspect" => Only::Inspect,
                    "run" => Only::Run,
                    other => bail!("`--only` wants `inspect` or `run`, got `{other}`"),
                });
            }
            "--guest" => {
                opts.guest = match value {
                    "probe" => bench_run::GuestKind::Probe,
                    "minimal" => bench_run::GuestKind::Minimal,
                    other => bail!("`--guest` wants `probe` or `minimal`, got `{other}`"),
                };
            }
            "--runs" => opts.runs = Some(count(false)?),
            "--launches" => opts.launches = count(false)?,
            "--qemu-launches" => opts.qemu_launches = count(true)?,
            _ => opts.jobs = Some(count(false)?),
        }
    }
    Ok(opts)
}

fn bench_kernel(
    anyboot: &Path,
    kernel: Kernel,
    payload: &'static str,
    tmp: &Path,
    runs: usize,
) -> Result<KernelResult> {
    let mut a = Command::new(anyboot);
    a.arg("inspect").arg("--json").arg(&kernel.vmlinuz);
    let mut b = Command::new("sh");
    b.arg("-c")
        .arg(PIPELINE)
        .arg("sh")
        .arg(&kernel.vmlinuz)
        .arg(tmp)
        .arg(payload);

    // Warm-up (page cache) and sanity check: A must print JSON, B must succeed.
    let out = run_captured(&mut a)?;
    serde_json::from_slice::<Value>(&out.stdout).with_context(|| {
        format!(
            "`{}` did not print JSON (is `anyboot inspect --json` implemented?)",
            display(&a)
        )
    })?;
    run_captured(&mut b)?;

    let mut series_a = Series {
        label: "A anyboot inspect --json",
        command: display(&a),
        samples: Vec::with_capacity(runs),
    };
    let mut series_b = Series {
        label: "B extract + readelf -n",
        command: format!(
            "sh -c '<pipeline>' sh {} {} {payload}",
            kernel.vmlinuz.display(),
            tmp.display()
        ),
        samples: Vec::with_capacity(runs),
    };
    for _ in 0..runs {
        series_a.samples.push(measure(&mut a)?);
        series_b.samples.push(measure(&mut b)?);
    }
    Ok(KernelResult {
        kernel,
        payload,
        a: series_a,
        b: series_b,
    })
}

/// Runs `cmd` once with its output discarded; returns wall time and the tree's peak RSS.
fn measure(cmd: &mut Command) -> Result<Sample> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let reaped = reap(cmd)?;
    if !libc::WIFEXITED(reaped.status) || libc::WEXITSTATUS(reaped.status) != 0 {
        bail!(
            "`{}` failed (wait status {:#x})",
            display(cmd),
            reaped.status
        );
    }
    Ok(Sample {
        wall_s: reaped.wall_s,
        maxrss_kib: reaped.maxrss_kib,
    })
}

/// One child, reaped by `wait4`.
#[derive(Debug, Clone, Copy)]
pub struct Reaped {
    /// The wait status.
    pub status: libc::c_int,
    /// Seconds from just before `spawn` to `wait4`'s return.
    pub wall_s: f64,
    /// `ru_maxrss`: peak RSS of the child or of its largest waited-for descendant, KiB.
    pub maxrss_kib: u64,
    /// `ru_utime + ru_stime`, seconds.
    pub cpu_s: f64,
}

/// Makes `cmd` start by `fork` + `exec` rather than std's default `posix_spawn` (a `vfork`):
/// at `exec` Linux records the peak RSS of the memory the child leaves into its `ru_maxrss`.
/// After a `vfork` that memory is the harness's own, so the harness's peak RSS (3–4 MiB) would
/// be a floor under every figure; after a `fork` it is the child's fresh copy, which has no
/// peak of its own yet, and the floor is what `true` itself needs (about 1 MiB, see
/// [`rss_floor_kib`]).
pub fn use_fork(cmd: &mut Command) {
    // SAFETY: the closure runs in the forked child before `exec`; it does nothing, so it
    // allocates nothing, takes no lock and touches no state shared with the parent.
    unsafe {
        cmd.pre_exec(|| Ok(()));
    }
}

/// The smallest `ru_maxrss` a child can report here: `true`, started as [`reap`] starts every
/// measured command.
pub fn rss_floor_kib() -> Result<u64> {
    let mut cmd = Command::new("true");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    Ok(reap(&mut cmd)?.maxrss_kib)
}

/// Spawns `cmd` (stdio as the caller set it) by [`use_fork`] and reaps it with `wait4`,
/// whatever its status.
pub fn reap(cmd: &mut Command) -> Result<Reaped> {
    use_fork(cmd);
    let start = Instant::now();
    let child = cmd
        .spawn()
        .with_context(|| format!("starting `{}`", display(cmd)))?;
    let pid = libc::pid_t::try_from(child.id()).context("child pid out of range")?;
    let (_, status, usage) =
        wait4(pid).with_context(|| format!("waiting for `{}`", display(cmd)))?;
    let wall_s = start.elapsed().as_secs_f64();
    // The child is reaped; dropping the handle neither waits nor kills.
    drop(child);
    Ok(Reaped {
        status,
        wall_s,
        maxrss_kib: u64::try_from(usage.ru_maxrss).context("negative ru_maxrss")?,
        cpu_s: cpu_s(&usage),
    })
}

/// Reaps whichever child ends first: its pid, wait status and resource usage.
pub fn reap_any() -> Result<(libc::pid_t, libc::c_int, libc::rusage)> {
    wait4(-1).context("waiting for any child")
}

/// `wait4(pid)`, retried on EINTR.
fn wait4(pid: libc::pid_t) -> std::io::Result<(libc::pid_t, libc::c_int, libc::rusage)> {
    let mut status: libc::c_int = 0;
    // SAFETY: `rusage` is a plain C struct of integers, for which all-zero bytes are valid.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `pid` is one of our own unreaped children or -1 (std's `Child` never waits
        // unless asked, and the callers never ask); `status` and `usage` are valid, exclusive,
        // correctly typed out-pointers.
        let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if reaped > 0 {
            return Ok((reaped, status, usage));
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// User plus system CPU time of a `rusage`, seconds.
pub fn cpu_s(usage: &libc::rusage) -> f64 {
    #[allow(clippy::cast_precision_loss)] // seconds and microseconds are far below 2^52
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// KiB to MiB.
pub fn kib_to_mib(kib: u64) -> f64 {
    #[allow(clippy::cast_precision_loss)] // KiB counts are far below 2^52
    let kib = kib as f64;
    kib / 1024.0
}

/// Which decompressor the pipeline needs, from the payload's magic bytes.
///
/// Reads only the setup header and the magic, not the whole kernel.
fn payload_compressor(vmlinuz: &Path) -> Result<&'static str> {
    let what = || format!("reading the setup header of {}", vmlinuz.display());
    let mut file = fs::File::open(vmlinuz).with_context(what)?;
    let mut header = [0u8; 0x250];
    file.read_exact(&mut header).with_context(what)?;
    if header[0x202..0x206] != *b"HdrS" {
        bail!("{} is not a bzImage (no HdrS)", vmlinuz.display());
    }
    let setup_sects = match header[0x1f1] {
        0 => 4,
        n => u64::from(n),
    };
    let payload_offset =
        u32::from_le_bytes([header[0x248], header[0x249], header[0x24a], header[0x24b]]);
    let start = (setup_sects + 1) * 512 + u64::from(payload_offset);
    let mut magic = [0u8; 6];
    file.seek(SeekFrom::Start(start))
        .and_then(|_| file.read_exact(&mut magic))
        .with_context(|| {
            format!(
                "{}: reading the payload magic at {start:#x}",
                vmlinuz.display()
            )
        })?;
    let tool = match magic {
        [0x1f, 0x8b, ..] => "gzip",
        [0xfd, b'7', b'z', b'X', b'Z', 0x00] => "xz",
        [0x02, 0x21, 0x4c, 0x18, ..] => "lz4",
        [0x28, 0xb5, 0x2f, 0xfd, ..] => "zstd",
        [b'B', b'Z', b'h', ..] => "bzip2",
        [0x89, b'L', b'Z', b'O', ..] => "lzop",
        [0x5d, 0x00, 0x00, ..] => "lzma",
        other => bail!("{}: unknown payload magic {other:02x?}", vmlinuz.display()),
    };
    Ok(tool)
}

pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => values[n / 2],
        _ => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// The nearest-rank `p` quantile (0 < p <= 1): the smallest value with at least `p` of the
/// values at or below it.
pub fn percentile(mut values: Vec<f64>, p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    if values.is_empty() {
        return f64::NAN;
    }
    #[allow(clippy::cast_precision_loss)] // sample counts are small
    let rank = (p * values.len() as f64).ceil();
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // 1 <= rank <= len
    let rank = (rank as usize).clamp(1, values.len());
    values[rank - 1]
}

fn print_table(results: &[KernelResult]) {
    #[allow(clippy::cast_precision_loss)] // KiB counts are far below 2^52
    let mib = |kib: f64| kib / 1024.0;
    println!(
        "\n{:<8} {:<7} {:<26} {:>4} {:>12} {:>15} {:>13}",
        "kernel", "payload", "command", "runs", "wall median", "peak RSS median", "peak RSS max"
    );
    for r in results {
        for s in [&r.a, &r.b] {
            #[allow(clippy::cast_precision_loss)] // KiB counts are far below 2^52
            let max = s.max_rss() as f64;
            println!(
                "{:<8} {:<7} {:<26} {:>4} {:>10.3} s {:>11.1} MiB {:>9.1} MiB",
                r.kernel.flavour,
                r.payload,
                s.label,
                s.samples.len(),
                s.median_wall(),
                mib(s.median_rss()),
                mib(max),
            );
        }
        #[allow(clippy::cast_precision_loss)] // KiB counts are far below 2^52
        let max_ratio = r.a.max_rss() as f64 / r.b.max_rss() as f64;
        println!(
            "{:<8} {:<7} {:<26} {:>4} {:>11.3}x {:>14.3}x {:>12.3}x",
            r.kernel.flavour,
            r.payload,
            "ratio A/B",
            "",
            r.a.median_wall() / r.b.median_wall(),
            r.a.median_rss() / r.b.median_rss(),
            max_ratio,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert!((median(vec![3.0, 1.0, 2.0]) - 2.0).abs() < f64::EPSILON);
        assert!((median(vec![4.0, 1.0, 3.0, 2.0]) - 2.5).abs() < f64::EPSILON);
        assert!(median(Vec::new()).is_nan());
    }

    #[test]
    fn percentile_is_nearest_rank() {
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        assert!((percentile(v.clone(), 0.9) - 9.0).abs() < f64::EPSILON);
        assert!((percentile(v.clone(), 1.0) - 10.0).abs() < f64::EPSILON);
        assert!((percentile(v, 0.01) - 1.0).abs() < f64::EPSILON);
        assert!((percentile(vec![5.0], 0.9) - 5.0).abs() < f64::EPSILON);
        assert!(percentile(Vec::new(), 0.5).is_nan());
    }

    #[test]
    fn parses_options() {
        let defaults = parse_options(&[]).unwrap();
        assert_eq!(defaults.only, None);
        assert_eq!(defaults.runs, None);
        assert_eq!(defaults.launches, DEFAULT_LAUNCHES);
        assert_eq!(defaults.qemu_launches, DEFAULT_QEMU_LAUNCHES);
        assert_eq!(defaults.jobs, None);
        assert_eq!(
            parse_options(&args(&["--runs", "3"])).unwrap().runs,
            Some(3)
        );
        assert_eq!(parse_options(&args(&["--runs=11"])).unwrap().runs, Some(11));
        let o = parse_options(&args(&[
            "--only",
            "run",
            "--launches=50",
            "--qemu-launches",
            "0",
            "--jobs",
            "8",
        ]))
        .unwrap();
        assert_eq!(o.only, Some(Only::Run));
        assert_eq!((o.launches, o.qemu_launches, o.jobs), (50, 0, Some(8)));
        assert_eq!(
            parse_options(&args(&["--only=inspect"])).unwrap().only,
            Some(Only::Inspect)
        );
        for bad in [
            &["--runs", "0"][..],
            &["--runs"],
            &["--fast"],
            &["--only", "boot"],
            &["--launches", "0"],
            &["--jobs", "x"],
            &["--runs=-1"],
        ] {
            assert!(parse_options(&args(bad)).is_err(), "{bad:?}");
        }
    }

    /// A bzImage-shaped file: 1 setup sector after the boot sector, then `payload` plus the
    /// 4-byte size trailer, as `payload_offset`/`payload_length` describe.
    fn fake_bzimage(payload: &[u8], uncompressed_len: usize) -> Vec<u8> {
        let mut image = vec![0u8; 1024];
        image[0x1f1] = 1;
        image[0x202..0x206].copy_from_slice(b"HdrS");
        let len = u32::try_from(payload.len() + 4).unwrap();
        image[0x24c..0x250].copy_from_slice(&len.to_le_bytes());
        image.extend_from_slice(payload);
        image.extend_from_slice(&u32::try_from(uncompressed_len).unwrap().to_le_bytes());
        image
    }

    #[test]
    fn pipeline_extracts_the_payload_and_reads_its_notes() {
        let elf = std::env::current_exe().unwrap();
        let Ok(gz) = Command::new("gzip").arg("-c").arg(&elf).output() else {
            eprintln!("SKIPPED: gzip not found");
            return;
        };
        assert!(gz.status.success());
        let original = fs::read(&elf).unwrap();
        let dir = std::env::temp_dir().join(format!("xtask-bench-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let image = dir.join("vmlinuz");
        let out = dir.join("vmlinux");
        fs::write(&image, fake_bzimage(&gz.stdout, original.len())).unwrap();

        assert_eq!(payload_compressor(&image).unwrap(), "gzip");
        let mut sh = Command::new("sh");
        sh.arg("-c")
            .arg(PIPELINE)
            .arg("sh")
            .arg(&image)
            .arg(&out)
            .arg("gzip");
        let ran = run_captured(&mut sh);
        let extracted = fs::read(&out);
        fs::remove_dir_all(&dir).unwrap();
        if let Err(err) = &ran
            && err.to_string().contains("readelf: not found")
        {
            eprintln!("SKIPPED: readelf not found");
            return;
        }
        ran.unwrap();
        assert!(extracted.unwrap() == original, "pipeline output differs");
    }

    #[test]
    fn rejects_non_bzimages() {
        let dir = std::env::temp_dir().join(format!("xtask-bench-bad-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let file = dir.join("not-a-kernel");
        fs::write(&file, vec![0u8; 4096]).unwrap();
        let err = payload_compressor(&file).unwrap_err();
        fs::remove_dir_all(&dir).unwrap();
        assert!(err.to_string().contains("no HdrS"), "{err:#}");
    }
}
