//! Running the `anyboot` binary from integration tests (shared by the test files that
//! `mod cli;` it).

use std::path::Path;
use std::process::{Command, Output};

/// `anyboot ARGS... KERNEL`.
pub fn anyboot(args: &[&str], kernel: &Path) -> Output {
    Command::new(assert_cmd::cargo::cargo_bin!("anyboot"))
        .args(args)
        .arg(kernel)
        .output()
        .unwrap()
}

/// `anyboot ARGS... KERNEL` is refused: exit status 2, nothing on stdout, one line on stderr
/// holding every `expect`.
pub fn refused(args: &[&str], kernel: &Path, expect: &[&str]) {
    let out = anyboot(args, kernel);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(out.stdout.is_empty(), "{args:?}: nothing on stdout");
    assert_eq!(err.lines().count(), 1, "{args:?}: {err:?}");
    for e in expect {
        assert!(err.contains(e), "{args:?}: expected {e:?} in {err}");
    }
}
