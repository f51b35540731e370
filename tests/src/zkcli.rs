//! zkCli.sh, Apache's command-line client from Debian's `zookeeper` package (installed by
//! scripts/install-test-deps): a script of commands run against a server and its output
//! returned, for the tests that prove zkCli's frames work against both targets.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::Server;

pub const ZKCLI: &str = "/usr/share/zookeeper/bin/zkCli.sh";

/// How long one script may run before `timeout` stops zkCli (a hung client fails the test
/// with its output instead of hanging it).
const LIMIT_S: u32 = 120;

/// Panics with the install hint when zkCli.sh is missing.
pub fn assert_installed() {
    assert!(
        Path::new(ZKCLI).exists(),
        "{ZKCLI} not found: run `apt-get install zookeeper` (scripts/install-test-deps)"
    );
}

/// What zkCli printed: it writes `Created` and errors on stderr, what `get` reads on stdout.
pub struct Output {
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// stdout then stderr.
    pub fn text(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// Runs `commands` (one per line), then `quit`, through `zkCli.sh -server connect`, with
/// `env` set (e.g. `CLIENT_JVMFLAGS`) and its log in `log_dir`. zkCli's exit status is that
/// of its last command, so callers judge from the text; a zkCli killed or still running
/// after the time limit fails here.
pub fn run_with(connect: &str, log_dir: &Path, env: &[(&str, String)], commands: &str) -> Output {
    assert_installed();
    let mut child = Command::new("timeout")
        .arg(LIMIT_S.to_string())
        .arg(ZKCLI)
        .arg("-server")
        .arg(connect)
        .env("ZOO_LOG_DIR", log_dir)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn zkCli.sh");
    let script = format!("{commands}\nquit\n");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(script.as_bytes()).expect("zkCli's stdin");
    drop(stdin);
    let output = child.wait_with_output().expect("zkCli.sh output");
    let out = Output {
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    match output.status.code() {
        Some(124) => panic!("zkCli.sh still running after {LIMIT_S} s:\n{}", out.text()),
        None => panic!("zkCli.sh killed ({}):\n{}", output.status, out.text()),
        Some(_) => out,
    }
}

/// Runs `commands` through zkCli.sh against `server`; stdout and stderr together.
pub fn run(server: &Server, commands: &str) -> String {
    run_with(&server.connect_string(), server.dir(), &[], commands).text()
}
