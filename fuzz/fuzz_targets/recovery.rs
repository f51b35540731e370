//! Fuzz target `recovery`: arbitrary bytes as a log segment and a snapshot file, fed to the
//! segment scanner, the snapshot decoder and full recovery on the in-memory device. Any
//! input may be rejected; none may panic. The first two bytes choose where the input splits.

#![no_main]

use libfuzzer_sys::fuzz_target;
use zoocore_storage::{decode_snapshot, format::scan_segment, recover, MemDevice, RecoverOptions};

fuzz_target!(|data: &[u8]| {
    let (split, rest) = match data {
        [a, b, rest @ ..] => (usize::from(u16::from_be_bytes([*a, *b])), rest),
        _ => (0, data),
    };
    let (seg, snap) = rest.split_at(split.min(rest.len()));
    let _ = scan_segment(seg, true);
    let _ = scan_segment(seg, false);
    let _ = decode_snapshot("snapshot.0000000000000001", snap);
    let dev = MemDevice::new();
    dev.put("log.0000000000000001", seg);
    dev.put("snapshot.0000000000000001", snap);
    let _ = recover(dev, RecoverOptions::default());
});
