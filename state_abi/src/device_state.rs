// SPDX-License-Identifier: GPL-2.0

//! The device state both child versions hand over, and its evolution.
//!
//! Sections:
//! - `DEVS` ([`TAG_DEVICE_STATE`], mandatory): the device. Version 1 is
//!   [`DeviceStateV1`] (72-byte payload), version 2 is [`DeviceStateV2`]
//!   (96 bytes: version 1's fields, then the byte counters and the adopt
//!   count). Each version has an exact payload length: a longer or shorter
//!   payload is an error ([`BlobError::PayloadTooLong`] /
//!   [`BlobError::PayloadTooShort`]); new fields mean a new section version.
//! - `QSTA` ([`TAG_QUEUE_STATS`], optional, version 1): per-queue counters
//!   ([`QueueStats`]). Written with schema 2 only; a reader that does not
//!   know it skips it.
//!
//! The "schema" of [`write_state`] / [`read_state`] is the `DEVS` section
//! version: schema 2 writes `DEVS` v2 and `QSTA`; schema 1 writes `DEVS` v1
//! only, which a version-1 child can read (downgrade). Reading migrates a v1
//! section to [`DeviceStateV2`] ([`migrate_v1_to_v2`]).
//!
//! Bulk data is never in the blob: `data_handle` names the preserved memory
//! holding the disk's contents.

use super::abi::MemHandle;
use super::blob::{
    tag, BlobError, BlobReader, BlobWriter, LeReader, Section, BLOB_HEADER_LEN, SECTION_HEADER_LEN,
};

/// Tag of the device-state section, `"DEVS"` (mandatory).
pub const TAG_DEVICE_STATE: u32 = tag(b"DEVS");
/// Tag of the per-queue statistics section, `"QSTA"` (optional).
pub const TAG_QUEUE_STATS: u32 = tag(b"QSTA");

/// Section version of [`DeviceStateV1`].
pub const DEVS_V1: u16 = 1;
/// Section version of [`DeviceStateV2`].
pub const DEVS_V2: u16 = 2;
/// Section version of [`QueueStats`].
pub const QSTA_V1: u16 = 1;

/// Schema 1: `DEVS` v1 only.
pub const SCHEMA_V1: u32 = 1;
/// Schema 2: `DEVS` v2, and `QSTA` v1 if given.
pub const SCHEMA_V2: u32 = 2;
/// The newest schema this code reads and writes.
pub const SCHEMA_LATEST: u32 = SCHEMA_V2;

pub use super::blob::{MAX_BLOB_LEN, MAX_QUEUES};
/// Smallest logical block size.
pub const MIN_BLOCK_SIZE: u32 = 512;
/// Largest logical block size.
pub const MAX_BLOCK_SIZE: u32 = 4096;

/// Payload length of `DEVS` v1.
pub const DEVS_V1_LEN: usize = 72;
/// Payload length of `DEVS` v2.
pub const DEVS_V2_LEN: usize = DEVS_V1_LEN + 24;
/// Length of one [`QueueStat`] in a `QSTA` payload.
pub const QSTA_ENTRY_LEN: usize = 24;
/// Length of the `QSTA` payload before its entries (count, reserved).
pub const QSTA_HEADER_LEN: usize = 8;
/// Largest `QSTA` payload.
pub const QSTA_MAX_LEN: usize = QSTA_HEADER_LEN + MAX_QUEUES * QSTA_ENTRY_LEN;
/// Largest blob [`write_state`] produces (schema 2 with [`MAX_QUEUES`]
/// queues): header, `DEVS` v2 and a full `QSTA`, the controller and the
/// per-file sections. All payload lengths are multiples of 8, so there is
/// no padding. The boundary's [`MAX_BLOB_LEN`] (the parent's buffers) must
/// hold it.
pub const SCHEMA_MAX_BLOB_LEN: usize = BLOB_HEADER_LEN
    + SECTION_HEADER_LEN
    + DEVS_V2_LEN
    + SECTION_HEADER_LEN
    + QSTA_MAX_LEN
    + super::controller::NVMC_SECTION_LEN
    + super::controller::FILE_SECTION_MAX_LEN;

const _: () = assert!((DEVS_V1_LEN | DEVS_V2_LEN | QSTA_MAX_LEN) & 7 == 0);
const _: () = assert!(SCHEMA_MAX_BLOB_LEN == MAX_BLOB_LEN);

/// `DEVS` version 1.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceStateV1 {
    /// Device size in bytes: non-zero, a multiple of `block_size`.
    pub capacity_bytes: u64,
    /// Logical block size: a power of two in 512..=4096.
    pub block_size: u32,
    /// Hardware queues: 1..=[`MAX_QUEUES`].
    pub nr_queues: u32,
    /// Preserved memory holding the data.
    pub data_handle: MemHandle,
    /// Length of that memory: at least `capacity_bytes`.
    pub data_len: u64,
    /// Read requests served.
    pub reads: u64,
    /// Write requests served.
    pub writes: u64,
    /// Flush requests served.
    pub flushes: u64,
    /// Discard requests served.
    pub discards: u64,
    /// Write-zeroes requests served.
    pub write_zeroes: u64,
}

/// `DEVS` version 2: version 1's fields, then new ones.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceStateV2 {
    /// Device size in bytes: non-zero, a multiple of `block_size`.
    pub capacity_bytes: u64,
    /// Logical block size: a power of two in 512..=4096.
    pub block_size: u32,
    /// Hardware queues: 1..=[`MAX_QUEUES`].
    pub nr_queues: u32,
    /// Preserved memory holding the data.
    pub data_handle: MemHandle,
    /// Length of that memory: at least `capacity_bytes`.
    pub data_len: u64,
    /// Read requests served.
    pub reads: u64,
    /// Write requests served.
    pub writes: u64,
    /// Flush requests served.
    pub flushes: u64,
    /// Discard requests served.
    pub discards: u64,
    /// Write-zeroes requests served.
    pub write_zeroes: u64,
    /// Bytes read (new in v2).
    pub bytes_read: u64,
    /// Bytes written (new in v2).
    pub bytes_written: u64,
    /// How many times this state has been adopted by a child (new in v2).
    /// The adopting child increments it; the codec does not.
    pub adopt_count: u32,
    /// Zero.
    pub reserved: u32,
}

fn check_geometry(
    capacity_bytes: u64,
    block_size: u32,
    nr_queues: u32,
    data_len: u64,
) -> Result<(), BlobError> {
    if !block_size.is_power_of_two() || !(MIN_BLOCK_SIZE..=MAX_BLOCK_SIZE).contains(&block_size) {
        return Err(BlobError::InvalidField("block_size"));
    }
    if capacity_bytes == 0 || capacity_bytes.checked_rem(u64::from(block_size)) != Some(0) {
        return Err(BlobError::InvalidField("capacity_bytes"));
    }
    if nr_queues == 0 || usize::try_from(nr_queues).map_or(true, |n| n > MAX_QUEUES) {
        return Err(BlobError::InvalidField("nr_queues"));
    }
    if data_len < capacity_bytes {
        return Err(BlobError::InvalidField("data_len"));
    }
    Ok(())
}

impl DeviceStateV1 {
    /// Checks the invariants documented on the fields.
    pub fn validate(&self) -> Result<(), BlobError> {
        check_geometry(
            self.capacity_bytes,
            self.block_size,
            self.nr_queues,
            self.data_len,
        )
    }

    /// Appends this state as a mandatory `DEVS` v1 section.
    pub fn encode(&self, w: &mut BlobWriter<'_>) -> Result<(), BlobError> {
        self.validate()?;
        let mut s = w.begin_section(TAG_DEVICE_STATE, DEVS_V1, true)?;
        s.put_u64(self.capacity_bytes)?;
        s.put_u32(self.block_size)?;
        s.put_u32(self.nr_queues)?;
        s.put_u64(self.data_handle.0)?;
        s.put_u64(self.data_len)?;
        s.put_u64(self.reads)?;
        s.put_u64(self.writes)?;
        s.put_u64(self.flushes)?;
        s.put_u64(self.discards)?;
        s.put_u64(self.write_zeroes)?;
        s.end()
    }

    /// Decodes and validates a `DEVS` v1 payload (exactly
    /// [`DEVS_V1_LEN`] bytes).
    pub fn decode(payload: &[u8]) -> Result<Self, BlobError> {
        let mut r = LeReader::new(payload);
        let s = Self::read_fields(&mut r)?;
        r.finish()?;
        s.validate()?;
        Ok(s)
    }

    fn read_fields(r: &mut LeReader<'_>) -> Result<Self, BlobError> {
        Ok(DeviceStateV1 {
            capacity_bytes: r.u64()?,
            block_size: r.u32()?,
            nr_queues: r.u32()?,
            data_handle: MemHandle(r.u64()?),
            data_len: r.u64()?,
            reads: r.u64()?,
            writes: r.u64()?,
            flushes: r.u64()?,
            discards: r.u64()?,
            write_zeroes: r.u64()?,
        })
    }
}

impl DeviceStateV2 {
    /// Checks the invariants documented on the fields.
    pub fn validate(&self) -> Result<(), BlobError> {
        check_geometry(
            self.capacity_bytes,
            self.block_size,
            self.nr_queues,
            self.data_len,
        )?;
        if self.reserved != 0 {
            return Err(BlobError::ReservedNotZero);
        }
        Ok(())
    }

    /// Appends this state as a mandatory `DEVS` v2 section.
    pub fn encode(&self, w: &mut BlobWriter<'_>) -> Result<(), BlobError> {
        self.validate()?;
        let mut s = w.begin_section(TAG_DEVICE_STATE, DEVS_V2, true)?;
        s.put_u64(self.capacity_bytes)?;
        s.put_u32(self.block_size)?;
        s.put_u32(self.nr_queues)?;
        s.put_u64(self.data_handle.0)?;
        s.put_u64(self.data_len)?;
        s.put_u64(self.reads)?;
        s.put_u64(self.writes)?;
        s.put_u64(self.flushes)?;
        s.put_u64(self.discards)?;
        s.put_u64(self.write_zeroes)?;
        s.put_u64(self.bytes_read)?;
        s.put_u64(self.bytes_written)?;
        s.put_u32(self.adopt_count)?;
        s.put_u32(self.reserved)?;
        s.end()
    }

    /// Decodes and validates a `DEVS` v2 payload (exactly
    /// [`DEVS_V2_LEN`] bytes).
    pub fn decode(payload: &[u8]) -> Result<Self, BlobError> {
        let mut r = LeReader::new(payload);
        let v1 = DeviceStateV1::read_fields(&mut r)?;
        let bytes_read = r.u64()?;
        let bytes_written = r.u64()?;
        let adopt_count = r.u32()?;
        let reserved = r.u32()?;
        r.finish()?;
        let s = DeviceStateV2 {
            bytes_read,
            bytes_written,
            adopt_count,
            reserved,
            ..migrate_v1_to_v2(&v1)
        };
        s.validate()?;
        Ok(s)
    }
}

/// Upgrades a v1 state: the fields v2 added start at zero.
pub const fn migrate_v1_to_v2(v1: &DeviceStateV1) -> DeviceStateV2 {
    DeviceStateV2 {
        capacity_bytes: v1.capacity_bytes,
        block_size: v1.block_size,
        nr_queues: v1.nr_queues,
        data_handle: v1.data_handle,
        data_len: v1.data_len,
        reads: v1.reads,
        writes: v1.writes,
        flushes: v1.flushes,
        discards: v1.discards,
        write_zeroes: v1.write_zeroes,
        bytes_read: 0,
        bytes_written: 0,
        adopt_count: 0,
        reserved: 0,
    }
}

/// Downgrades a v2 state for a v1 reader: the fields v2 added are dropped.
pub const fn downgrade_v2_to_v1(v2: &DeviceStateV2) -> DeviceStateV1 {
    DeviceStateV1 {
        capacity_bytes: v2.capacity_bytes,
        block_size: v2.block_size,
        nr_queues: v2.nr_queues,
        data_handle: v2.data_handle,
        data_len: v2.data_len,
        reads: v2.reads,
        writes: v2.writes,
        flushes: v2.flushes,
        discards: v2.discards,
        write_zeroes: v2.write_zeroes,
    }
}

/// Counters of one hardware queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueStat {
    /// Requests submitted on the queue.
    pub submitted: u64,
    /// Requests completed on the queue.
    pub completed: u64,
    /// Highest number of requests in flight at once.
    pub max_inflight: u64,
}

impl QueueStat {
    /// All counters zero.
    pub const ZERO: QueueStat = QueueStat {
        submitted: 0,
        completed: 0,
        max_inflight: 0,
    };
}

/// Per-queue counters, up to [`MAX_QUEUES`], in a fixed array (no
/// allocation). Entries past `len()` are always zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueStats {
    count: usize,
    queues: [QueueStat; MAX_QUEUES],
}

impl Default for QueueStats {
    fn default() -> Self {
        Self::new()
    }
}

impl QueueStats {
    /// No queues.
    pub const fn new() -> Self {
        QueueStats {
            count: 0,
            queues: [QueueStat::ZERO; MAX_QUEUES],
        }
    }

    /// Makes these `n` queues (at most [`MAX_QUEUES`]) with zero counters,
    /// in place (no copy of the array on the stack).
    pub fn reset(&mut self, n: usize) {
        self.count = n.min(MAX_QUEUES);
        self.queues = [QueueStat::ZERO; MAX_QUEUES];
    }

    /// `n` queues with zero counters; `None` if `n > MAX_QUEUES`.
    pub fn zeroed(n: usize) -> Option<Self> {
        (n <= MAX_QUEUES).then_some(QueueStats {
            count: n,
            ..Self::new()
        })
    }

    /// Copies `stats`; [`BlobError::InvalidField`] if there are more than
    /// [`MAX_QUEUES`].
    pub fn from_slice(stats: &[QueueStat]) -> Result<Self, BlobError> {
        let mut q = Self::new();
        let dst = q
            .queues
            .get_mut(..stats.len())
            .ok_or(BlobError::InvalidField("queue_stats.count"))?;
        dst.copy_from_slice(stats);
        q.count = stats.len();
        Ok(q)
    }

    /// Appends one queue; [`BlobError::InvalidField`] when full.
    pub fn push(&mut self, stat: QueueStat) -> Result<(), BlobError> {
        let slot = self
            .queues
            .get_mut(self.count)
            .ok_or(BlobError::InvalidField("queue_stats.count"))?;
        *slot = stat;
        self.count = self.count.saturating_add(1);
        Ok(())
    }

    /// Number of queues.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether there are no queues.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The queues' counters.
    pub fn as_slice(&self) -> &[QueueStat] {
        self.queues.get(..self.count).unwrap_or(&[])
    }

    /// The queues' counters, mutable.
    pub fn as_mut_slice(&mut self) -> &mut [QueueStat] {
        self.queues.get_mut(..self.count).unwrap_or(&mut [])
    }

    /// Appends these counters as an optional `QSTA` v1 section.
    pub fn encode(&self, w: &mut BlobWriter<'_>) -> Result<(), BlobError> {
        let count =
            u32::try_from(self.count).map_err(|_| BlobError::InvalidField("queue_stats.count"))?;
        let mut s = w.begin_section(TAG_QUEUE_STATS, QSTA_V1, false)?;
        s.put_u32(count)?;
        s.put_u32(0)?;
        for q in self.as_slice() {
            s.put_u64(q.submitted)?;
            s.put_u64(q.completed)?;
            s.put_u64(q.max_inflight)?;
        }
        s.end()
    }

    /// Decodes a `QSTA` v1 payload: count (at most [`MAX_QUEUES`]), a zero
    /// reserved word, then exactly `count` entries.
    pub fn decode(payload: &[u8]) -> Result<Self, BlobError> {
        let mut q = Self::new();
        q.decode_into(payload)?;
        Ok(q)
    }

    /// [`QueueStats::decode`] into `self` (no array on the stack; on error
    /// `self` is left partly written).
    pub fn decode_into(&mut self, payload: &[u8]) -> Result<(), BlobError> {
        let mut r = LeReader::new(payload);
        let count = r.u32()?;
        r.reserved_u32()?;
        let n = usize::try_from(count).map_err(|_| BlobError::InvalidField("queue_stats.count"))?;
        if n > MAX_QUEUES {
            return Err(BlobError::InvalidField("queue_stats.count"));
        }
        self.reset(0);
        for _ in 0..n {
            self.push(QueueStat {
                submitted: r.u64()?,
                completed: r.u64()?,
                max_inflight: r.u64()?,
            })?;
        }
        r.finish()
    }
}

fn check_queue_count(state: &DeviceStateV2, queues: &QueueStats) -> Result<(), BlobError> {
    match u32::try_from(queues.len()) {
        Ok(n) if n <= state.nr_queues => Ok(()),
        _ => Err(BlobError::InvalidField("queue_stats.count")),
    }
}

/// Writes the blob for `state` in device-state schema `schema` into `buf`
/// and returns its length.
///
/// - schema 1 ([`SCHEMA_V1`]): a mandatory `DEVS` v1 section (the v2-only
///   fields are dropped, see [`downgrade_v2_to_v1`]); `queues` is ignored.
/// - schema 2 ([`SCHEMA_V2`]): a mandatory `DEVS` v2 section, and an
///   optional `QSTA` v1 section if `queues` is given (at most
///   `state.nr_queues` entries).
/// - anything else: [`BlobError::UnsupportedSchema`]. (The ABI's "0 =
///   native" is for the child to resolve.)
///
/// The state is validated first ([`BlobError::InvalidField`]); a buffer of
/// [`MAX_BLOB_LEN`] bytes is always large enough, otherwise
/// [`BlobError::BufferTooSmall`].
pub fn write_state(
    buf: &mut [u8],
    producer_child_version: u32,
    state: &DeviceStateV2,
    queues: Option<&QueueStats>,
    schema: u32,
) -> Result<usize, BlobError> {
    let mut w = BlobWriter::new(buf, producer_child_version)?;
    write_state_sections(&mut w, state, queues, schema)?;
    w.finish()
}

/// The sections [`write_state`] writes, appended to `w` (which the caller
/// finishes, possibly after sections of its own).
pub(crate) fn write_state_sections(
    w: &mut BlobWriter<'_>,
    state: &DeviceStateV2,
    queues: Option<&QueueStats>,
    schema: u32,
) -> Result<(), BlobError> {
    match schema {
        SCHEMA_V1 => {
            let v1 = downgrade_v2_to_v1(state);
            v1.validate()?;
            v1.encode(w)
        }
        SCHEMA_V2 => {
            state.validate()?;
            if let Some(q) = queues {
                check_queue_count(state, q)?;
            }
            state.encode(w)?;
            if let Some(q) = queues {
                q.encode(w)?;
            }
            Ok(())
        }
        _ => Err(BlobError::UnsupportedSchema { schema }),
    }
}

/// Reads a state blob as a reader that understands device-state schemas up
/// to `max_schema` (1 or 2; other values are
/// [`BlobError::UnsupportedSchema`]).
///
/// Validates the blob ([`BlobReader::parse`]), refuses unknown mandatory
/// sections and mandatory sections newer than understood
/// ([`BlobReader::check_known`]; a schema-1 reader does not know `QSTA`),
/// requires `DEVS` ([`BlobError::MissingSection`]) and decodes it: v1 is
/// migrated to v2 ([`migrate_v1_to_v2`]); v2 needs `max_schema >= 2`, and
/// any other version is [`BlobError::UnsupportedSectionVersion`]. With
/// `max_schema >= 2` a `QSTA` v1 section is decoded too (at most
/// `nr_queues` entries); an optional `QSTA` of a newer version is skipped.
///
/// Returns the state, the queue statistics if any, and the `DEVS` section
/// version found. The caller (the adopting child) increments `adopt_count`.
pub fn read_state(
    blob: &[u8],
    max_schema: u32,
) -> Result<(DeviceStateV2, Option<QueueStats>, u16), BlobError> {
    read_state_known(blob, max_schema, &[], |_| Ok(()))
}

/// [`read_state`] for a reader that also understands the sections of
/// `extra` (`(tag, newest version)`, mandatory ones included): each section
/// of the blob whose tag is in `extra` is passed to `each` after the
/// device state has been decoded.
pub(crate) fn read_state_known<'a>(
    blob: &'a [u8],
    max_schema: u32,
    extra: &[(u32, u16)],
    each: impl FnMut(Section<'a>) -> Result<(), BlobError>,
) -> Result<(DeviceStateV2, Option<QueueStats>, u16), BlobError> {
    let mut queues = QueueStats::new();
    let (state, has_queues, version) =
        read_state_known_into(blob, max_schema, extra, &mut queues, each)?;
    Ok((state, has_queues.then_some(queues), version))
}

/// [`read_state_known`] with the queue statistics decoded into `queues`
/// (whether there were any is the middle of the result): no queue array on
/// the stack, for kernel callers (a 16 KiB stack).
pub(crate) fn read_state_known_into<'a>(
    blob: &'a [u8],
    max_schema: u32,
    extra: &[(u32, u16)],
    queues: &mut QueueStats,
    mut each: impl FnMut(Section<'a>) -> Result<(), BlobError>,
) -> Result<(DeviceStateV2, bool, u16), BlobError> {
    if max_schema == 0 || max_schema > SCHEMA_LATEST {
        return Err(BlobError::UnsupportedSchema { schema: max_schema });
    }
    let reader = BlobReader::parse(blob)?;
    let v2_reader = max_schema >= SCHEMA_V2;
    let ours: &[(u32, u16)] = if v2_reader {
        &[(TAG_DEVICE_STATE, DEVS_V2), (TAG_QUEUE_STATS, QSTA_V1)]
    } else {
        &[(TAG_DEVICE_STATE, DEVS_V1)]
    };
    reader.check_known_in(&[ours, extra])?;

    let devs = reader
        .find(TAG_DEVICE_STATE)
        .ok_or(BlobError::MissingSection {
            tag: TAG_DEVICE_STATE,
        })?;
    let state = match devs.version {
        DEVS_V1 => migrate_v1_to_v2(&DeviceStateV1::decode(devs.payload)?),
        DEVS_V2 if v2_reader => DeviceStateV2::decode(devs.payload)?,
        version => {
            return Err(BlobError::UnsupportedSectionVersion {
                tag: TAG_DEVICE_STATE,
                version,
            })
        }
    };

    let has_queues = match reader.find(TAG_QUEUE_STATS) {
        Some(s) if v2_reader && s.version == QSTA_V1 => {
            queues.decode_into(s.payload)?;
            check_queue_count(&state, queues)?;
            true
        }
        _ => false,
    };
    for s in reader.sections() {
        if extra.iter().any(|(t, v)| *t == s.tag && s.version <= *v) {
            each(s)?;
        }
    }
    Ok((state, has_queues, devs.version))
}

#[cfg(test)]
mod tests;
