//! `cargo xtask kernels`: fetch Debian's current kernels into a cache folder outside git.
//!
//! Layout of the cache folder (see [`kernels_dir`]):
//! - `debs/<package>_<version>.deb` — downloaded packages, each checked with `dpkg-deb --info`;
//! - `<package>_<version>/` — the unpacked package (`boot/vmlinuz-*`, `lib/modules/...`);
//! - `manifest.json` — what the tests read (`anyboot_fixtures::kernels`).
//!
//! Downloads and unpacking happen in a `.tmp-<pid>-*` folder and are renamed into place when
//! complete, so an interrupted run never leaves a half-written file where a later run trusts it.
//! The package is resolved from Debian's metapackage every time (a pinned ABI version vanishes
//! from the mirrors); if apt cannot answer (no lists, no network) a kernel already in the
//! manifest is reused with a warning.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::util::{run_captured, stdout_of};

/// A kernel flavour and the Debian metapackage that names its current package.
#[derive(Debug, Clone, Copy)]
pub struct Flavour {
    /// Short name used on the command line and in the manifest.
    pub name: &'static str,
    /// Debian metapackage whose `Depends` is the current versioned package.
    pub meta: &'static str,
}

/// Every flavour, in manifest order.
pub const FLAVOURS: [Flavour; 2] = [
    Flavour {
        name: "cloud",
        meta: "linux-image-cloud-amd64",
    },
    Flavour {
        name: "generic",
        meta: "linux-image-amd64",
    },
];

/// One cached kernel, as `manifest.json` lists it: the record the tests read back.
pub use anyboot_fixtures::kernels::Kernel;

/// `cargo xtask kernels [--flavour cloud|generic|all]`.
pub fn cmd(args: &[String]) -> Result<()> {
    let mut flavour = "all".to_owned();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--flavour" => {
                flavour = it
                    .next()
                    .context("`--flavour` needs a value: cloud, generic or all")?
                    .clone();
            }
            other => match other.strip_prefix("--flavour=") {
                Some(value) => flavour = value.to_owned(),
                None => bail!(
                    "unknown argument `{other}` (usage: kernels [--flavour cloud|generic|all])"
                ),
            },
        }
    }
    let selected = select(&flavour)?;
    for kernel in ensure(&selected)? {
        println!("{:<8} {}", kernel.flavour, kernel.vmlinuz.display());
    }
    Ok(())
}

/// Maps `cloud`, `generic` or `all` to flavours.
pub fn select(name: &str) -> Result<Vec<Flavour>> {
    if name == "all" {
        return Ok(FLAVOURS.to_vec());
    }
    match FLAVOURS.iter().find(|f| f.name == name) {
        Some(f) => Ok(vec![*f]),
        None => bail!("unknown flavour `{name}`: expected cloud, generic or all"),
    }
}

/// The cache folder, by the one rule the tests also use
/// ([`anyboot_fixtures::kernels::kernels_dir`]): `$ANYBOOT_KERNELS`, else
/// `$XDG_CACHE_HOME/anyboot/kernels`, else `$HOME/.cache/anyboot/kernels`.
pub fn kernels_dir() -> Result<PathBuf> {
    let dir = anyboot_fixtures::kernels::kernels_dir();
    if dir.starts_with("/nonexistent") {
        bail!("cannot place the kernel cache: set ANYBOOT_KERNELS, XDG_CACHE_HOME or HOME");
    }
    Ok(dir)
}

/// Makes sure the selected kernels are cached and listed in `manifest.json`; returns them.
pub fn ensure(selected: &[Flavour]) -> Result<Vec<Kernel>> {
    let dir = kernels_dir()?;
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    remove_stale_temps(&dir);
    let previous = read_manifest(&dir);

    let mut apt = Apt::default();
    let mut fresh = Vec::new();
    for flavour in selected {
        let kernel = ensure_one(&dir, *flavour, &previous, &mut apt)
            .with_context(|| format!("getting the Debian {} kernel", flavour.name))?;
        fresh.push(kernel);
    }

    // Keep entries of flavours not asked for this time, if their files are still there.
    let mut all: Vec<Kernel> = previous
        .into_iter()
        .filter(|k| !fresh.iter().any(|f| f.flavour == k.flavour) && k.vmlinuz.is_file())
        .chain(fresh.iter().cloned())
        .collect();
    all.sort_by_key(|k| FLAVOURS.iter().position(|f| f.name == k.flavour));
    write_manifest(&dir, &all)?;
    Ok(fresh)
}

fn ensure_one(dir: &Path, flavour: Flavour, previous: &[Kernel], apt: &mut Apt) -> Result<Kernel> {
    let (package, version) = match apt.resolve(flavour.meta) {
        Ok(resolved) => resolved,
        Err(err) => {
            let cached = previous
                .iter()
                .find(|k| k.flavour == flavour.name && k.vmlinuz.is_file());
            match cached {
                Some(kernel) => {
                    eprintln!(
                        "warning: cannot ask apt for the current {} ({err:#}); reusing cached {} {}",
                        flavour.meta, kernel.package, kernel.version
                    );
                    return Ok(kernel.clone());
                }
                None => return Err(err),
            }
        }
    };

    let stem = format!("{package}_{}", version.replace(':', "%3a"));
    let root = dir.join(&stem);
    if !root.is_dir() {
        let deb = cached_deb(dir, &stem, &package, &version)?;
        let tmp = TempDir::new(dir)?;
        let unpacked = tmp.path().join("root");
        run_captured(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&unpacked))?;
        find_vmlinuz(&unpacked).with_context(|| format!("checking {}", deb.display()))?;
        if let Err(err) = fs::rename(&unpacked, &root) {
            // Another run may have finished the same unpack first; its tree is as good as ours.
            if !root.is_dir() {
                return Err(err).with_context(|| format!("renaming into {}", root.display()));
            }
        }
    }
    let vmlinuz = find_vmlinuz(&root)?;
    let sha256 = sha256(&vmlinuz)?;
    Ok(Kernel {
        flavour: flavour.name.to_owned(),
        package,
        version,
        vmlinuz,
        root,
        sha256,
    })
}

/// Returns the path of a verified `.deb` for `package=version`, downloading it if needed.
fn cached_deb(dir: &Path, stem: &str, package: &str, version: &str) -> Result<PathBuf> {
    let debs = dir.join("debs");
    fs::create_dir_all(&debs).with_context(|| format!("creating {}", debs.display()))?;
    let deb = debs.join(format!("{stem}.deb"));
    if deb.is_file() {
        if deb_ok(&deb) {
            return Ok(deb);
        }
        eprintln!(
            "warning: {} is damaged; downloading it again",
            deb.display()
        );
        fs::remove_file(&deb).with_context(|| format!("removing {}", deb.display()))?;
    }

    let tmp = TempDir::new(dir)?;
    // apt drops privileges to `_apt` when it can; let it write into the temp folder.
    let _ = fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o777));
    run_captured(
        Command::new("apt-get")
            .args(["download", "-q=2"])
            .arg(format!("{package}={version}"))
            .current_dir(tmp.path()),
    )?;
    let downloaded = fs::read_dir(tmp.path())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .with_context(|| format!("`apt-get download {package}={version}` left no .deb"))?;
    if !deb_ok(&downloaded) {
        bail!(
            "downloaded {} fails `dpkg-deb --info`",
            downloaded.display()
        );
    }
    fs::rename(&downloaded, &deb).with_context(|| format!("renaming into {}", deb.display()))?;
    Ok(deb)
}

fn deb_ok(deb: &Path) -> bool {
    run_captured(Command::new("dpkg-deb").arg("--info").arg(deb)).is_ok()
}

fn find_vmlinuz(root: &Path) -> Result<PathBuf> {
    let boot = root.join("boot");
    let entries = fs::read_dir(&boot).with_context(|| format!("listing {}", boot.display()))?;
    for entry in entries {
        let path = entry?.path();
        let is_vmlinuz = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("vmlinuz-"));
        if is_vmlinuz && path.is_file() {
            return Ok(path);
        }
    }
    bail!("no boot/vmlinuz-* in {}", root.display())
}

fn sha256(path: &Path) -> Result<String> {
    let out = stdout_of(Command::new("sha256sum").arg(path))?;
    let hex = out.split_whitespace().next().unwrap_or_default();
    if hex.len() != 64 {
        bail!("unexpected `sha256sum` output: {out:?}");
    }
    Ok(hex.to_owned())
}

/// Resolves metapackages through apt, running `apt-get update` at most once if apt has no lists.
#[derive(Debug, Default)]
struct Apt {
    updated: bool,
}

impl Apt {
    fn resolve(&mut self, meta: &str) -> Result<(String, String)> {
        match resolve(meta) {
            Ok(found) => Ok(found),
            // SAFETY: geteuid has no preconditions and cannot fail.
            Err(first) if !self.updated && unsafe { libc::geteuid() } == 0 => {
                self.updated = true;
                eprintln!("apt cannot resolve {meta} ({first:#}); running `apt-get update`");
                run_captured(Command::new("apt-get").args(["update", "-q=2"]))?;
                resolve(meta)
            }
            Err(err) => Err(err),
        }
    }
}

/// `(package, version)` of the candidate that metapackage `meta` depends on.
fn resolve(meta: &str) -> Result<(String, String)> {
    let deps = stdout_of(Command::new("apt-cache").args([
        "depends",
        "--no-recommends",
        "--no-suggests",
        "--no-conflicts",
        "--no-breaks",
        "--no-replaces",
        "--no-enhances",
        meta,
    ]))?;
    let package = deps
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Depends:"))
        .map(str::trim)
        .find(|p| p.starts_with("linux-image-"))
        .with_context(|| format!("apt knows no linux-image dependency of {meta}"))?
        .to_owned();
    let show = stdout_of(Command::new("apt-cache").args(["show", "--no-all-versions", &package]))?;
    let version = show
        .lines()
        .find_map(|l| l.strip_prefix("Version:"))
        .map(str::trim)
        .with_context(|| format!("apt shows no candidate version of {package}"))?
        .to_owned();
    Ok((package, version))
}

fn read_manifest(dir: &Path) -> Vec<Kernel> {
    let Ok(text) = fs::read_to_string(dir.join("manifest.json")) else {
        return Vec::new();
    };
    let Ok(value) = serde_json::from_str::<Value>(&text) else {
        return Vec::new();
    };
    value["kernels"]
        .as_array()
        .map(|ks| ks.iter().filter_map(Kernel::from_json).collect())
        .unwrap_or_default()
}

/// Writes `manifest.json` atomically (temp file, then rename).
fn write_manifest(dir: &Path, kernels: &[Kernel]) -> Result<()> {
    let value = json!({ "kernels": kernels.iter().map(Kernel::to_json).collect::<Vec<_>>() });
    let mut text = serde_json::to_string_pretty(&value)?;
    text.push('\n');
    let tmp = dir.join(format!(".manifest.json.{}", std::process::id()));
    fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    let path = dir.join("manifest.json");
    fs::rename(&tmp, &path).with_context(|| format!("renaming into {}", path.display()))
}

/// A `.tmp-<pid>-<nanos>` folder inside the cache, removed on drop.
#[derive(Debug)]
struct TempDir(PathBuf);

impl TempDir {
    fn new(parent: &Path) -> Result<TempDir> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let path = parent.join(format!(".tmp-{}-{nanos}", std::process::id()));
        fs::create_dir(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(TempDir(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Removes temp folders (and manifest temp files) left behind by runs that no longer exist.
fn remove_stale_temps(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let pid = name
            .strip_prefix(".tmp-")
            .and_then(|rest| rest.split('-').next())
            .or_else(|| name.strip_prefix(".manifest.json."));
        let Some(pid) = pid.and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let path = entry.path();
            let _ = if path.is_dir() {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selects_flavours() {
        let names = |v: Vec<Flavour>| v.iter().map(|f| f.name).collect::<Vec<_>>();
        assert_eq!(names(select("all").unwrap()), ["cloud", "generic"]);
        assert_eq!(names(select("cloud").unwrap()), ["cloud"]);
        assert_eq!(select("generic").unwrap()[0].meta, "linux-image-amd64");
        assert!(select("rt").is_err());
    }

    #[test]
    fn manifest_round_trips() {
        let dir = std::env::temp_dir().join(format!("xtask-manifest-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let kernel = Kernel {
            flavour: "cloud".into(),
            package: "linux-image-x-cloud-amd64".into(),
            version: "1-1".into(),
            vmlinuz: dir.join("boot/vmlinuz-x"),
            root: dir.clone(),
            sha256: "ab".repeat(32),
        };
        write_manifest(&dir, std::slice::from_ref(&kernel)).unwrap();
        let back = read_manifest(&dir);
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].package, kernel.package);
        assert_eq!(back[0].vmlinuz, kernel.vmlinuz);
        assert_eq!(back[0].sha256, kernel.sha256);
    }
}
