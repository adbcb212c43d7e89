//! Boot Debian's cloud kernel under QEMU microvm (TCG) to a busybox init with the command line
//! `anyboot emit qemu` prints: as a bzImage (run through `sh -c`, proving the shell quoting), by
//! PVH from the vmlinux anyboot extracts (compared byte for byte with the shell recipe's), and
//! with a virtio-blk disk whose path holds a comma (proving QEMU's comma doubling).
//!
//! Needs `cargo xtask kernels`, `qemu-system-x86_64`, `busybox-static` and (for PVH) `lz4`;
//! each is skipped loudly when missing unless `ANYBOOT_REQUIRE_KERNELS=1` /
//! `ANYBOOT_REQUIRE_ORACLES=1`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyboot_fixtures::initramfs::{InitOptions, busybox_initramfs, raw_disk};
use anyboot_fixtures::kernels::{Kernel, kernel_or_skip, tool_or_skip};
use anyboot_fixtures::qemu::{QemuRun, TCG_ICOUNT, TSC_CALIBRATION_FAILED, run_qemu};

const MARKER: &str = "ANYBOOT-QEMU-TEST";
/// TCG boots take 2–5 s; anything near this is a hang.
const TIMEOUT: Duration = Duration::from_secs(60);
/// A cmdline word with shell and printf metacharacters; the kernel passes it through verbatim.
const TOKEN: &str = r#"anyboot.test=x$HOME;'q'`id`\n%s*&|<>"#;
const DISK_MAGIC: &[u8; 16] = b"ANYBOOT-DISK-OK!";

struct Setup {
    qemu: PathBuf,
    kernel: Kernel,
    dir: PathBuf,
}

fn setup(name: &str) -> Option<Setup> {
    let kernel = kernel_or_skip("cloud")?;
    let qemu = tool_or_skip("qemu-system-x86_64")?;
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("qemu_boot-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    Some(Setup { qemu, kernel, dir })
}

impl Setup {
    fn initrd(&self, opts: &InitOptions) -> Option<PathBuf> {
        let img = busybox_initramfs(&self.kernel.root, MARKER, opts)?;
        let path = self.dir.join("initrd.gz");
        fs::write(&path, img).unwrap();
        Some(path)
    }

    /// What `anyboot emit qemu --accel tcg` prints for this kernel, initrd and extra options,
    /// in the given format.
    fn emit(&self, kernel: &Path, initrd: &Path, format: &str, extra: &[&str]) -> String {
        let out = Command::new(assert_cmd::cargo::cargo_bin!("anyboot"))
            .args(["emit", "qemu", "--accel", "tcg", "--format", format])
            .arg(kernel)
            .arg("--initrd")
            .arg(initrd)
            .args(["--cmdline", &format!("console=ttyS0 {TOKEN}")])
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "emit failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// The emitted argv (JSON format), with the QEMU found on this machine as argv[0].
    fn emitted_argv(&self, kernel: &Path, initrd: &Path, extra: &[&str]) -> Vec<String> {
        let mut argv: Vec<String> =
            serde_json::from_str(&self.emit(kernel, initrd, "json", extra)).unwrap();
        assert_eq!(argv[0], "qemu-system-x86_64");
        argv[0] = self.qemu.to_string_lossy().into_owned();
        assert!(
            argv.windows(2)
                .any(|w| w[0] == TCG_ICOUNT[0] && w[1] == TCG_ICOUNT[1]),
            "the TCG command line carries -icount: {argv:?}"
        );
        argv
    }

    fn boot(&self, what: &str, argv: &[String]) -> QemuRun {
        let run = run_qemu(argv, TIMEOUT);
        eprintln!(
            "{what}: {:.2?}, status {:?}, markers {:?}",
            run.elapsed,
            run.status,
            run.marker_lines(MARKER)
        );
        assert!(
            run.success(),
            "{what}: QEMU did not exit 0 by itself (timed out: {}, status {:?}, {:.1?}){}\nargv: {argv:?}\n--- output ---\n{}",
            run.timed_out,
            run.status,
            run.elapsed,
            if run.output.contains(TSC_CALIBRATION_FAILED) {
                " — TSC calibration against the PIT failed; see TCG_ICOUNT"
            } else {
                ""
            },
            run.output
        );
        let cmdline = run.marker_value(MARKER, "CMDLINE");
        assert!(
            cmdline
                .as_deref()
                .is_some_and(|c| c.split(' ').any(|w| w == TOKEN)),
            "{what}: no CMDLINE marker with {TOKEN:?}\n--- output ---\n{}",
            run.output
        );
        assert!(
            run.marker_value(MARKER, "DONE").is_some(),
            "{what}: no DONE marker\n--- output ---\n{}",
            run.output
        );
        run
    }

    fn done(self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn microvm_boots_debian_bzimage() {
    let Some(s) = setup("bzimage") else { return };
    let Some(initrd) = s.initrd(&InitOptions::default()) else {
        return;
    };
    // The shell format, run by a real shell: the hostile token must survive its quoting.
    let line = s.emit(&s.kernel.vmlinuz, &initrd, "shell", &[]);
    assert!(line.starts_with("qemu-system-x86_64 "), "{line}");
    let qemu_dir = s.qemu.parent().unwrap().to_string_lossy().into_owned();
    let argv: Vec<String> = vec![
        "sh".into(),
        "-c".into(),
        format!("PATH='{qemu_dir}':\"$PATH\" exec {}", line.trim_end()),
    ];
    let run = s.boot("bzImage", &argv);
    assert_eq!(run.marker_lines(MARKER).len(), 2, "{}", run.output);
    s.done();
}

/// Extract the ELF vmlinux from a bzImage with the recipe of `validation.md` (setup_sects,
/// payload_offset, payload_length; `- 4` drops the size trailer).
fn extract_vmlinux(lz4: &Path, bzimage: &Path, out: &Path) {
    let recipe = r#"K="$1"
ss=$(od -An -tu1 -j $((0x1f1)) -N1 "$K")
po=$(od -An -tu4 -j $((0x248)) -N4 "$K"); pl=$(od -An -tu4 -j $((0x24c)) -N4 "$K")
tail -c +$(( (ss + 1) * 512 + po + 1 )) "$K" | head -c $((pl - 4)) | "$3" -dc > "$2""#;
    let st = Command::new("sh")
        .args(["-c", recipe, "sh"])
        .arg(bzimage)
        .arg(out)
        .arg(lz4)
        .status()
        .expect("run sh");
    assert!(st.success(), "vmlinux extraction failed: {st}");
    let head = fs::read(out)
        .map(|b| b[..4.min(b.len())].to_vec())
        .unwrap_or_default();
    assert_eq!(head, b"\x7fELF", "extracted payload is not an ELF");
}

#[test]
fn microvm_boots_debian_vmlinux_by_pvh() {
    let Some(s) = setup("pvh") else { return };
    let Some(lz4) = tool_or_skip("lz4") else {
        return;
    };
    let Some(initrd) = s.initrd(&InitOptions::default()) else {
        return;
    };
    let vmlinux = s.dir.join("vmlinux");
    extract_vmlinux(&lz4, &s.kernel.vmlinuz, &vmlinux);
    let cache = s.dir.join("extracted");
    let argv = s.emitted_argv(
        &s.kernel.vmlinuz,
        &initrd,
        &["--protocol", "pvh", "--extract-to", cache.to_str().unwrap()],
    );
    let k = argv.iter().position(|a| a == "-kernel").unwrap() + 1;
    let ours = PathBuf::from(&argv[k]);
    assert!(ours.starts_with(&cache), "{argv:?}");
    assert!(
        fs::read(&ours).unwrap() == fs::read(&vmlinux).unwrap(),
        "anyboot's extracted vmlinux differs from the shell recipe's"
    );
    s.boot("PVH vmlinux", &argv);
    s.done();
}

#[test]
fn microvm_reads_a_virtio_mmio_disk() {
    let Some(s) = setup("disk") else { return };
    let opts = InitOptions {
        disk: true,
        ..InitOptions::default()
    };
    let Some(initrd) = s.initrd(&opts) else {
        return;
    };
    // A comma in the path: QEMU needs it doubled inside -drive.
    let disk = s.dir.join("disk,1.img");
    raw_disk(&disk, DISK_MAGIC, 1 << 20);
    let argv = s.emitted_argv(
        &s.kernel.vmlinuz,
        &initrd,
        &["--disk", disk.to_str().unwrap()],
    );
    let run = s.boot("bzImage + virtio-blk", &argv);
    let want: String = DISK_MAGIC.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        run.marker_value(MARKER, "DISK").as_deref(),
        Some(want.as_str()),
        "--- output ---\n{}",
        run.output
    );
    s.done();
}
