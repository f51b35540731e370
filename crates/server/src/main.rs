//! The `zoocore` binary (being written).
fn main() {}
