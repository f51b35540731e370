//! kazoo, Python's ZooKeeper client, against the target (both servers): a second client
//! library, in another language, that nobody here wrote (tests/kazoo/check.py). The test
//! command installs it in a virtualenv (scripts/install-test-deps); without it the test fails
//! saying so. Read-only sessions with kazoo are in tests/tests/read_only.rs.

use zoocore_e2e::*;

#[test]
fn kazoo_drives_the_everyday_surface() {
    let server = Server::start(Target::from_env());
    let out = kazoo::run(&["surface", &server.connect_string()]);
    assert!(out.ends_with("ok\n"), "{out}");
}
