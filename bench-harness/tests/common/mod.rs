//! What the bench-harness test files share: the zoocore binary their campaigns start.

use std::path::{Path, PathBuf};
use std::process::Command;

/// `target/<profile>/zoocore`, found from this test executable at `target/<profile>/deps/x`
/// and built with cargo if missing.
pub fn zoocore_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test exe in target/<profile>/deps");
    let bin = profile_dir.join("zoocore");
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--bin", "zoocore", "-p", "zoocore-server"]);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build");
        assert!(status.success(), "cargo build of zoocore failed");
    }
    assert!(bin.exists(), "zoocore not at {}", bin.display());
    bin
}
