// SPDX-License-Identifier: GPL-2.0

//! The in-flight section (`INFL`, ABI 1.1): the requests a frozen child
//! accepted and has not completed, handed to the child that adopts its
//! blob, which completes them (see `FreezeFn` and `CAP_HANDOVER` in
//! [`super::abi`]).
//!
//! The section is **mandatory**: a reader that does not know it must refuse
//! the blob, since ignoring it would leave those requests without a
//! completion forever. A child of ABI 1.1 reads it with
//! [`read_state_held`]; [`super::device_state::read_state`] still refuses
//! it, so a caller cannot drop held requests by accident.
//!
//! Payload (little endian): `count: u32`, `reserved: u32` (zero), then
//! `count` entries of `cookie: u64` (non-zero: the parent's cookie),
//! `remaining_ns: u64` (device time left when the blob was written; the
//! adopting child completes the request no earlier than that from its
//! adopt) and `status: i32` (0 or a negative errno, the request's result),
//! `reserved: u32` (zero).

use super::blob::{
    tag, BlobError, BlobWriter, LeReader, MAX_BLOB_LEN, MAX_QUEUES, SECTION_HEADER_LEN,
};

/// Tag of the in-flight section.
pub const TAG_INFLIGHT: u32 = tag(b"INFL");
/// Version of the in-flight section this crate reads and writes.
pub const INFL_V1: u16 = 1;
/// Bytes before the entries (count, reserved).
pub const INFL_HEADER_LEN: usize = 8;
/// Bytes per entry.
pub const INFL_ENTRY_LEN: usize = 24;
/// Most entries a section may hold: every tag of [`MAX_QUEUES`] queues of
/// depth 1024 (the parent's largest geometry).
pub const MAX_HELD: usize = MAX_QUEUES * 1024;

/// Most device time a handed-over request may have left, in nanoseconds
/// (10 s). A child's adopt puts handed-over requests first in its queue,
/// due that long after it: an entry far beyond any device's latency would
/// hold every later completion behind it (the device hangs), and one near
/// `u64::MAX` would overflow the child's clock arithmetic.
pub const MAX_REMAINING_NS: u64 = 10_000_000_000;

/// The slot of the parent's request table a cookie names (`seq << 32 |
/// slot`, see the parent's `inflight.rs`).
pub const fn cookie_slot(cookie: u64) -> usize {
    (cookie & 0xffff_ffff) as usize
}

/// One request handed over: accepted by the old child, not completed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeldRequest {
    /// The parent's cookie for the request (non-zero).
    pub cookie: u64,
    /// Device time left when the blob was written, in nanoseconds.
    pub remaining_ns: u64,
    /// The request's result: 0 or a negative errno.
    pub status: i32,
}

/// Largest blob with `held` requests handed over: a state blob of
/// [`MAX_BLOB_LEN`] and an `INFL` section with `held` entries.
pub const fn max_blob_len_with_held(held: usize) -> usize {
    (MAX_BLOB_LEN + SECTION_HEADER_LEN + INFL_HEADER_LEN)
        .saturating_add(held.saturating_mul(INFL_ENTRY_LEN))
}

/// Appends a mandatory `INFL` v1 section with the requests of `held`.
/// [`BlobError::InvalidField`] for more than [`MAX_HELD`] entries, a zero
/// cookie or a positive status.
pub fn encode_held<I>(w: &mut BlobWriter<'_>, held: I) -> Result<(), BlobError>
where
    I: IntoIterator<Item = HeldRequest>,
    I::IntoIter: ExactSizeIterator,
{
    let held = held.into_iter();
    let n = held.len();
    if n > MAX_HELD {
        return Err(BlobError::InvalidField("inflight.count"));
    }
    let count = u32::try_from(n).map_err(|_| BlobError::InvalidField("inflight.count"))?;
    let mut s = w.begin_section(TAG_INFLIGHT, INFL_V1, true)?;
    s.put_u32(count)?;
    s.put_u32(0)?;
    for h in held {
        check(&h)?;
        s.put_u64(h.cookie)?;
        s.put_u64(h.remaining_ns)?;
        s.put_u32(h.status as u32)?;
        s.put_u32(0)?;
    }
    s.end()
}

fn check(h: &HeldRequest) -> Result<(), BlobError> {
    if h.cookie == 0 {
        return Err(BlobError::InvalidField("inflight.cookie"));
    }
    if h.status > 0 {
        return Err(BlobError::InvalidField("inflight.status"));
    }
    Ok(())
}

/// What a reader checks of each entry beyond [`check`] (a writer may
/// produce it, the fault injection of a child does): the device time left
/// within [`MAX_REMAINING_NS`].
fn check_read(h: &HeldRequest) -> Result<(), BlobError> {
    check(h)?;
    if h.remaining_ns > MAX_REMAINING_NS {
        return Err(BlobError::InvalidField("inflight.remaining_ns"));
    }
    Ok(())
}

/// The entries of a validated `INFL` v1 payload, decoded one by one.
#[derive(Clone, Debug)]
pub struct HeldIter<'a> {
    r: LeReader<'a>,
    left: usize,
}

impl HeldIter<'_> {
    /// No entries (a blob without an `INFL` section).
    pub const EMPTY: HeldIter<'static> = HeldIter {
        r: LeReader::new(&[]),
        left: 0,
    };

    /// Entries left.
    pub fn len(&self) -> usize {
        self.left
    }

    /// Whether no entries are left.
    pub fn is_empty(&self) -> bool {
        self.left == 0
    }
}

impl Iterator for HeldIter<'_> {
    type Item = HeldRequest;

    fn next(&mut self) -> Option<HeldRequest> {
        if self.left == 0 {
            return None;
        }
        self.left = self.left.saturating_sub(1);
        // Validated by `decode_held`: these reads cannot fail.
        let cookie = self.r.u64().ok()?;
        let remaining_ns = self.r.u64().ok()?;
        let status = self.r.u32().ok()? as i32;
        self.r.u32().ok()?;
        Some(HeldRequest {
            cookie,
            remaining_ns,
            status,
        })
    }
}

/// Validates an `INFL` v1 payload completely (count within [`MAX_HELD`],
/// exact length, zero reserved words, non-zero cookies, statuses 0 or
/// negative, device time left within [`MAX_REMAINING_NS`]) and returns its
/// entries. Whether the cookies name requests in flight only the parent
/// knows: it checks them against its table ([`held_in_blob`]).
pub fn decode_held(payload: &[u8]) -> Result<HeldIter<'_>, BlobError> {
    let mut r = LeReader::new(payload);
    let n = usize::try_from(r.u32()?).map_err(|_| BlobError::InvalidField("inflight.count"))?;
    r.reserved_u32()?;
    if n > MAX_HELD {
        return Err(BlobError::InvalidField("inflight.count"));
    }
    let entries = r.clone();
    for _ in 0..n {
        let h = HeldRequest {
            cookie: r.u64()?,
            remaining_ns: r.u64()?,
            status: r.u32()? as i32,
        };
        r.reserved_u32()?;
        check_read(&h)?;
    }
    r.finish()?;
    Ok(HeldIter {
        r: entries,
        left: n,
    })
}

/// The validated entries of a parsed blob's `INFL` section (none without
/// one); an error for a section of another version or one
/// [`decode_held`] refuses.
pub fn held_in_blob<'a>(blob: &super::blob::BlobReader<'a>) -> Result<HeldIter<'a>, BlobError> {
    match blob.find(TAG_INFLIGHT) {
        None => Ok(HeldIter::EMPTY),
        Some(s) if s.version == INFL_V1 => decode_held(s.payload),
        Some(_) => Err(BlobError::InvalidField("inflight.version")),
    }
}

/// How many requests the `INFL` v1 section of a parsed blob says it hands
/// over: 0 without one (or with another version). Reads the count only, for
/// reports (e.g. the parent's `handed_over=`); a reader that completes the
/// requests validates them with [`read_state_held`].
pub fn held_count(blob: &super::blob::BlobReader<'_>) -> usize {
    blob.find(TAG_INFLIGHT)
        .filter(|s| s.version == INFL_V1)
        .and_then(|s| s.reader().u32().ok())
        .map_or(0, |n| n as usize)
}

#[cfg(test)]
mod tests {
    use super::super::state::*;
    use super::*;
    use crate::blob::BlobReader;
    use crate::device_state::{read_state, DeviceStateV2, SCHEMA_V1, SCHEMA_V2};
    use crate::MemHandle;

    fn state() -> DeviceStateV2 {
        DeviceStateV2 {
            capacity_bytes: 1 << 20,
            block_size: 4096,
            nr_queues: 2,
            data_handle: MemHandle(0x100),
            data_len: 1 << 20,
            writes: 7,
            ..Default::default()
        }
    }

    fn held(n: u32) -> impl ExactSizeIterator<Item = HeldRequest> {
        (1..n + 1).map(u64::from).map(|i| HeldRequest {
            cookie: (i << 32) | i,
            remaining_ns: i * 1000,
            status: if i % 3 == 0 { -5 } else { 0 },
        })
    }

    #[test]
    fn round_trip_every_schema() {
        for schema in [SCHEMA_V1, SCHEMA_V2] {
            let mut buf = vec![0u8; max_blob_len_with_held(128)];
            let len = write_state_held(&mut buf, 2, &state(), None, schema, held(128)).unwrap();
            assert!(len <= max_blob_len_with_held(128));
            let (s, _, _, it) = read_state_held(&buf[..len], SCHEMA_V2).unwrap();
            assert_eq!(s.writes, 7);
            assert_eq!(it.len(), 128);
            assert_eq!(it.collect::<Vec<_>>(), held(128).collect::<Vec<_>>());
        }
    }

    #[test]
    fn held_count_reads_the_section() {
        let mut buf = vec![0u8; max_blob_len_with_held(5)];
        let len = write_state_held(&mut buf, 1, &state(), None, SCHEMA_V2, held(5)).unwrap();
        assert_eq!(held_count(&BlobReader::parse(&buf[..len]).unwrap()), 5);
        let len = write_state_held(&mut buf, 1, &state(), None, SCHEMA_V2, held(0)).unwrap();
        assert_eq!(held_count(&BlobReader::parse(&buf[..len]).unwrap()), 0);
    }

    #[test]
    fn no_held_no_section() {
        let mut buf = vec![0u8; MAX_BLOB_LEN];
        let len = write_state_held(&mut buf, 1, &state(), None, SCHEMA_V1, held(0)).unwrap();
        let r = BlobReader::parse(&buf[..len]).unwrap();
        assert!(r.find(TAG_INFLIGHT).is_none());
        // And a plain reader takes it.
        assert!(read_state(&buf[..len], SCHEMA_V1).is_ok());
        let (_, _, _, it) = read_state_held(&buf[..len], SCHEMA_V1).unwrap();
        assert!(it.is_empty());
    }

    #[test]
    fn plain_reader_refuses_held_requests() {
        let mut buf = vec![0u8; max_blob_len_with_held(4)];
        let len = write_state_held(&mut buf, 1, &state(), None, SCHEMA_V1, held(4)).unwrap();
        assert_eq!(
            read_state(&buf[..len], SCHEMA_V2).unwrap_err(),
            BlobError::UnknownMandatorySection { tag: TAG_INFLIGHT }
        );
    }

    #[test]
    fn bad_entries_are_refused() {
        let mut buf = vec![0u8; max_blob_len_with_held(1)];
        let zero = [HeldRequest::default()];
        assert_eq!(
            write_state_held(&mut buf, 1, &state(), None, SCHEMA_V1, zero).unwrap_err(),
            BlobError::InvalidField("inflight.cookie")
        );
        let positive = [HeldRequest {
            cookie: 1,
            remaining_ns: 0,
            status: 1,
        }];
        assert_eq!(
            write_state_held(&mut buf, 1, &state(), None, SCHEMA_V1, positive).unwrap_err(),
            BlobError::InvalidField("inflight.status")
        );
        // A payload whose count does not match its length.
        let mut p = vec![0u8; INFL_HEADER_LEN + INFL_ENTRY_LEN];
        p[0] = 2;
        p[8] = 1;
        assert!(decode_held(&p).is_err());
        p[0] = 1;
        assert_eq!(decode_held(&p).unwrap().count(), 1);
        // Reserved words must be zero.
        p[4] = 1;
        assert!(decode_held(&p).is_err());
        p[4] = 0;
        p[28] = 1;
        assert!(decode_held(&p).is_err());
        // Too many.
        let mut p = vec![0u8; INFL_HEADER_LEN];
        p[..4].copy_from_slice(&(MAX_HELD as u32 + 1).to_le_bytes());
        assert_eq!(
            decode_held(&p).unwrap_err(),
            BlobError::InvalidField("inflight.count")
        );
    }

    #[test]
    fn held_requests_can_be_stripped() {
        let mut buf = vec![0u8; max_blob_len_with_held(8)];
        let len = write_state_held(&mut buf, 2, &state(), None, SCHEMA_V2, held(8)).unwrap();
        let mut out = vec![0u8; MAX_BLOB_LEN];
        let n = crate::copy_without_section(&buf[..len], TAG_INFLIGHT, &mut out).unwrap();
        let (s, _, _) = read_state(&out[..n], SCHEMA_V2).unwrap();
        assert_eq!(s, state());
        assert_eq!(
            BlobReader::parse(&out[..n])
                .unwrap()
                .producer_child_version(),
            2
        );
        // A blob without the section copies unchanged.
        let mut again = vec![0u8; MAX_BLOB_LEN];
        let m = crate::copy_without_section(&out[..n], TAG_INFLIGHT, &mut again).unwrap();
        assert_eq!(&again[..m], &out[..n]);
    }

    #[test]
    fn too_small_a_buffer_is_an_error() {
        let mut buf = vec![0u8; MAX_BLOB_LEN];
        let len = write_state_held(&mut buf, 1, &state(), None, SCHEMA_V2, held(1000));
        assert_eq!(len.unwrap_err(), BlobError::BufferTooSmall);
    }
}
