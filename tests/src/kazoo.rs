//! Runs tests/kazoo/check.py with the kazoo virtualenv that scripts/install-test-deps makes.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The virtualenv's Python, with kazoo installed.
pub const PYTHON: &str = "/opt/zoocore-kazoo/bin/python";

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("kazoo/check.py")
}

/// Runs `check.py <args>` and returns its output; panics with it when the script fails.
pub fn run(args: &[&str]) -> String {
    assert!(
        Path::new(PYTHON).exists(),
        "{PYTHON} not found: run scripts/install-test-deps (it installs kazoo in a virtualenv)"
    );
    let output = Command::new(PYTHON)
        .arg(script())
        .args(args)
        .output()
        .expect("run check.py");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "kazoo {args:?} failed:\n{text}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}
