//! The log segment's bytes (docs/LOG.md): header and record encoding, and `scan_segment`,
//! which finds the valid records of a segment and classifies what follows them as a clean
//! end, a torn tail, or corruption. Pure functions over byte slices, so recovery and the
//! fuzz target exercise exactly the same code; nothing here panics on any input.

use zoocore_proto::Zxid;

pub const SEGMENT_MAGIC: u32 = 0x5A43_4C47;
pub const SEGMENT_VERSION: u32 = 1;
pub const SEGMENT_HEADER_BYTES: u64 = 64;
/// length, synced_offset, zxid, time_ms.
pub const RECORD_HEADER_BYTES: u64 = 24;
pub const RECORD_CRC_BYTES: u64 = 4;
pub const RECORD_OVERHEAD_BYTES: u64 = RECORD_HEADER_BYTES + RECORD_CRC_BYTES;

const _: () = assert!(SEGMENT_HEADER_BYTES > RECORD_OVERHEAD_BYTES);

/// The name of the segment whose first record has `zxid`.
pub fn segment_name(zxid: Zxid) -> String {
    format!("log.{:016x}", zxid.0)
}

/// The zxid a segment or snapshot name carries (`<prefix>.<16 hex digits>`), if it is one.
pub fn parse_name(name: &str, prefix: &str) -> Option<Zxid> {
    let hex = name.strip_prefix(prefix)?.strip_prefix('.')?;
    if hex.len() != 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok().map(|v| Zxid(v as i64))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    pub first_zxid: Zxid,
    pub prev_zxid: Zxid,
    pub database_id: u64,
    pub prealloc_bytes: u64,
}

impl SegmentHeader {
    pub fn encode(&self) -> [u8; SEGMENT_HEADER_BYTES as usize] {
        let mut b = [0u8; SEGMENT_HEADER_BYTES as usize];
        b[0..4].copy_from_slice(&SEGMENT_MAGIC.to_be_bytes());
        b[4..8].copy_from_slice(&SEGMENT_VERSION.to_be_bytes());
        b[8..16].copy_from_slice(&self.first_zxid.0.to_be_bytes());
        b[16..24].copy_from_slice(&self.prev_zxid.0.to_be_bytes());
        b[24..32].copy_from_slice(&self.database_id.to_be_bytes());
        b[32..40].copy_from_slice(&self.prealloc_bytes.to_be_bytes());
        let crc = crc32c::crc32c(&b[..60]);
        b[60..64].copy_from_slice(&crc.to_be_bytes());
        b
    }

    /// Parses and checks a header against the file's length.
    pub fn decode(bytes: &[u8]) -> Result<SegmentHeader, Bad> {
        let Some(b) = bytes.get(..SEGMENT_HEADER_BYTES as usize) else {
            return Err(Bad::at(
                0,
                format!("file of {} bytes has no header", bytes.len()),
            ));
        };
        if be_u32(b, 0) != SEGMENT_MAGIC {
            return Err(Bad::at(0, "bad magic".into()));
        }
        if be_u32(b, 60) != crc32c::crc32c(&b[..60]) {
            return Err(Bad::at(0, "header checksum mismatch".into()));
        }
        let version = be_u32(b, 4);
        if version != SEGMENT_VERSION {
            return Err(Bad::at(4, format!("unknown version {version}")));
        }
        let h = SegmentHeader {
            first_zxid: Zxid(be_u64(b, 8) as i64),
            prev_zxid: Zxid(be_u64(b, 16) as i64),
            database_id: be_u64(b, 24),
            prealloc_bytes: be_u64(b, 32),
        };
        if h.prealloc_bytes != bytes.len() as u64 {
            return Err(Bad::at(
                32,
                format!(
                    "file is {} bytes, header says {}",
                    bytes.len(),
                    h.prealloc_bytes
                ),
            ));
        }
        if h.first_zxid <= h.prev_zxid {
            return Err(Bad::at(8, "first zxid not after prev zxid".into()));
        }
        Ok(h)
    }
}

/// Appends one record's bytes to `out`.
pub fn encode_record(out: &mut Vec<u8>, synced_offset: u32, zxid: Zxid, time_ms: i64, txn: &[u8]) {
    let len = u32::try_from(txn.len()).expect("txn length fits in u32");
    assert!(len > 0, "empty txn at zxid {zxid}");
    let start = out.len();
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&synced_offset.to_be_bytes());
    out.extend_from_slice(&zxid.0.to_be_bytes());
    out.extend_from_slice(&time_ms.to_be_bytes());
    out.extend_from_slice(txn);
    let crc = crc32c::crc32c(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// What is wrong, and where in the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bad {
    pub offset: u64,
    pub reason: String,
}

impl Bad {
    fn at(offset: u64, reason: String) -> Bad {
        Bad { offset, reason }
    }
}

/// One valid record, located in the scanned bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordRef {
    pub offset: u64,
    pub zxid: Zxid,
    pub time_ms: i64,
    pub synced_offset: u64,
    /// `txn` is `bytes[txn_start..txn_end]` of the scanned segment.
    pub txn_start: u64,
    pub txn_end: u64,
}

/// The bytes after the last valid record were never acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Torn {
    pub offset: u64,
    /// One past the last non-zero byte: truncation zeroes `offset..nonzero_end`.
    pub nonzero_end: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentScan {
    pub header: SegmentHeader,
    pub records: Vec<RecordRef>,
    /// Offset just past the last valid record.
    pub end: u64,
    pub torn: Option<Torn>,
}

impl SegmentScan {
    /// The zxid of the last record, or the header's `prev_zxid` when there is none.
    pub fn last_zxid(&self) -> Zxid {
        self.records
            .last()
            .map_or(self.header.prev_zxid, |r| r.zxid)
    }
}

fn be_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_be_bytes(a)
}

fn be_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(a)
}

/// Why the bytes at an offset are not a valid record (`None` when they are zeros: the end
/// marker).
enum Parse {
    Record(RecordRef),
    EndMarker,
    Invalid(String),
}

fn parse_record(bytes: &[u8], offset: u64, after: Zxid) -> Parse {
    let file_len = bytes.len() as u64;
    if offset + RECORD_OVERHEAD_BYTES > file_len {
        return Parse::Invalid("no room for a record".into());
    }
    let o = offset as usize;
    let head = &bytes[o..o + RECORD_HEADER_BYTES as usize];
    if head.iter().all(|&b| b == 0) {
        return Parse::EndMarker;
    }
    let len = u64::from(be_u32(head, 0));
    let synced_offset = u64::from(be_u32(head, 4));
    let zxid = Zxid(be_u64(head, 8) as i64);
    let time_ms = be_u64(head, 16) as i64;
    if len == 0 {
        return Parse::Invalid("zero length".into());
    }
    if offset + RECORD_OVERHEAD_BYTES + len > file_len {
        return Parse::Invalid(format!("length {len} runs past the end of the file"));
    }
    if synced_offset > offset {
        return Parse::Invalid(format!("synced offset {synced_offset} after the record"));
    }
    let crc_at = o + (RECORD_HEADER_BYTES + len) as usize;
    if be_u32(bytes, crc_at) != crc32c::crc32c(&bytes[o..crc_at]) {
        return Parse::Invalid("checksum mismatch".into());
    }
    if zxid <= after {
        return Parse::Invalid(format!("zxid {zxid} not after {after}"));
    }
    Parse::Record(RecordRef {
        offset,
        zxid,
        time_ms,
        synced_offset,
        txn_start: offset + RECORD_HEADER_BYTES,
        txn_end: offset + RECORD_HEADER_BYTES + len,
    })
}

/// Scans a segment (docs/LOG.md, "Where the data ends" and "Torn tail versus corruption").
/// `newest` says whether this is the newest segment, the only one that may have a torn tail.
pub fn scan_segment(bytes: &[u8], newest: bool) -> Result<SegmentScan, Bad> {
    let header = SegmentHeader::decode(bytes)?;
    let mut records = Vec::new();
    let mut offset = SEGMENT_HEADER_BYTES;
    let mut last = header.prev_zxid;
    let reason = loop {
        match parse_record(bytes, offset, last) {
            Parse::Record(r) => {
                if records.is_empty() && r.zxid != header.first_zxid {
                    break format!(
                        "first record has zxid {}, segment is named for {}",
                        r.zxid, header.first_zxid
                    );
                }
                last = r.zxid;
                offset = r.txn_end + RECORD_CRC_BYTES;
                records.push(r);
            }
            Parse::EndMarker => break "data after the end marker".to_string(),
            Parse::Invalid(why) => break why,
        }
    };
    let end = offset;
    let nonzero_end = nonzero_end(bytes).max(end);
    if nonzero_end == end {
        return Ok(SegmentScan {
            header,
            records,
            end,
            torn: None,
        });
    }
    if !newest {
        return Err(Bad::at(end, reason));
    }
    if let Some(later) = synced_record_after(bytes, end, last) {
        return Err(Bad::at(
            end,
            format!("{reason}, but the record at offset {later} proves it was synced"),
        ));
    }
    Ok(SegmentScan {
        header,
        records,
        end,
        torn: Some(Torn {
            offset: end,
            nonzero_end,
        }),
    })
}

/// One past the last non-zero byte (0 if all are zero). Checks 4 KiB blocks with an OR
/// fold the compiler vectorises: a segment is mostly trailing zeros, and this runs over
/// all of them at every start.
fn nonzero_end(bytes: &[u8]) -> u64 {
    const BLOCK: usize = 4096;
    let mut end = bytes.len();
    while end > 0 {
        let start = end.saturating_sub(BLOCK);
        let block = &bytes[start..end];
        let any = block
            .chunks(64)
            .fold(0u8, |acc, c| acc | c.iter().fold(0u8, |a, &b| a | b));
        if any != 0 {
            let p = block.iter().rposition(|&b| b != 0).unwrap_or(0);
            return (start + p + 1) as u64;
        }
        end = start;
    }
    0
}

/// The offset of a valid record after `end` whose `synced_offset` passes `end`, if any.
fn synced_record_after(bytes: &[u8], end: u64, after: Zxid) -> Option<u64> {
    let last_start = (bytes.len() as u64).checked_sub(RECORD_OVERHEAD_BYTES)?;
    (end + 1..=last_start).find(|&p| {
        // Cheap filters first: only a record claiming durability past `end` matters.
        let synced = u64::from(be_u32(bytes, p as usize + 4));
        synced > end && synced <= p && matches!(parse_record(bytes, p, after), Parse::Record(_))
    })
}

#[cfg(test)]
mod tests {
    use super::nonzero_end;

    #[test]
    fn nonzero_end_matches_a_byte_scan() {
        let naive = |b: &[u8]| b.iter().rposition(|&x| x != 0).map_or(0, |p| p as u64 + 1);
        for len in [0usize, 1, 63, 64, 4095, 4096, 4097, 3 * 4096 + 17] {
            let mut b = vec![0u8; len];
            assert_eq!(nonzero_end(&b), 0);
            for at in [0, len / 3, len.saturating_sub(4097), len.saturating_sub(1)] {
                if at < len {
                    b[at] = 7;
                    assert_eq!(nonzero_end(&b), naive(&b), "len {len} at {at}");
                }
            }
        }
    }
}
