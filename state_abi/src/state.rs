// SPDX-License-Identifier: GPL-2.0

//! A child's whole state blob: the device-state schema ([`super::device_state`]),
//! the controller and per-file sections, and the requests handed over
//! ([`super::handover`]), written and read in one go. Children only: the
//! parent moves blobs and never decodes a child's device state (it is built
//! with `cfg(hotup_parent)`, which leaves this module out).

use super::abi::MemHandle;
use super::blob::{BlobError, BlobWriter, Section};
use super::controller::{ControllerState, FileStates, FILE_V1, NVMC_V1, TAG_CONTROLLER, TAG_FILES};
use super::device_state::{
    read_state_known, read_state_known_into, write_state_sections, DeviceStateV2, QueueStats,
};
use super::handover::{decode_held, encode_held, HeldIter, HeldRequest, INFL_V1, TAG_INFLIGHT};

/// [`super::device_state::write_state`] plus, when `held` is not empty, the
/// `INFL` section with its requests (a blob of at most
/// [`max_blob_len_with_held`]`(held.len())` bytes).
pub fn write_state_held<I>(
    buf: &mut [u8],
    producer_child_version: u32,
    state: &DeviceStateV2,
    queues: Option<&QueueStats>,
    schema: u32,
    held: I,
) -> Result<usize, BlobError>
where
    I: IntoIterator<Item = HeldRequest>,
    I::IntoIter: ExactSizeIterator,
{
    write_state_full(
        buf,
        producer_child_version,
        state,
        queues,
        schema,
        held,
        None,
        None,
    )
}

/// [`write_state_held`] plus, if given, the optional controller section
/// (`NVMC`) and per-file section (`FILE`, [`super::controller`]), in every
/// schema: a reader that does not know them skips them.
#[allow(clippy::too_many_arguments)]
pub fn write_state_full<I>(
    buf: &mut [u8],
    producer_child_version: u32,
    state: &DeviceStateV2,
    queues: Option<&QueueStats>,
    schema: u32,
    held: I,
    ctrl: Option<&ControllerState>,
    files: Option<&FileStates>,
) -> Result<usize, BlobError>
where
    I: IntoIterator<Item = HeldRequest>,
    I::IntoIter: ExactSizeIterator,
{
    let held = held.into_iter();
    let mut w = BlobWriter::new(buf, producer_child_version)?;
    write_state_sections(&mut w, state, queues, schema)?;
    if let Some(c) = ctrl {
        c.encode(&mut w)?;
    }
    if let Some(f) = files {
        f.encode(&mut w)?;
    }
    if held.len() > 0 {
        encode_held(&mut w, held)?;
    }
    w.finish()
}

/// [`super::device_state::read_state`] for a reader that completes handed
/// over requests: it also accepts the `INFL` v1 section and returns its
/// entries (empty without one).
pub fn read_state_held(
    blob: &[u8],
    max_schema: u32,
) -> Result<(DeviceStateV2, Option<QueueStats>, u16, HeldIter<'_>), BlobError> {
    let mut held = HeldIter::EMPTY;
    let (state, queues, version) = read_state_known(
        blob,
        max_schema,
        &[(TAG_INFLIGHT, INFL_V1)],
        |s: Section<'_>| {
            if s.tag == TAG_INFLIGHT {
                held = decode_held(s.payload)?;
            }
            Ok(())
        },
    )?;
    Ok((state, queues, version, held))
}

/// What [`read_state_into`] fills in: kept by the caller (a kernel child
/// keeps it on the heap: the arrays are kilobytes, a kernel stack is 16).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateOut {
    /// The device state (a v1 section migrated).
    pub dev: DeviceStateV2,
    /// The queue statistics, if `has_queues`.
    pub queues: QueueStats,
    /// Whether the blob had queue statistics.
    pub has_queues: bool,
    /// The `DEVS` section version found.
    pub version: u16,
    /// The controller state (`NVMC`), if the producer wrote one.
    pub ctrl: Option<ControllerState>,
    /// The per-file states (`FILE`; empty without one).
    pub files: FileStates,
}

impl StateOut {
    /// Nothing read yet.
    pub const EMPTY: StateOut = StateOut {
        dev: DeviceStateV2 {
            capacity_bytes: 0,
            block_size: 0,
            nr_queues: 0,
            data_handle: MemHandle(0),
            data_len: 0,
            reads: 0,
            writes: 0,
            flushes: 0,
            discards: 0,
            write_zeroes: 0,
            bytes_read: 0,
            bytes_written: 0,
            adopt_count: 0,
            reserved: 0,
        },
        queues: QueueStats::new(),
        has_queues: false,
        version: 0,
        ctrl: None,
        files: FileStates::new(),
    };
}

/// [`read_state_held`] that also decodes the controller (`NVMC` v1) and
/// per-file (`FILE` v1) sections when the blob has them, into `out`; the
/// handed-over requests are returned. On error `out` may be partly
/// written.
pub fn read_state_into<'a>(
    blob: &'a [u8],
    max_schema: u32,
    out: &mut StateOut,
) -> Result<HeldIter<'a>, BlobError> {
    let mut held = HeldIter::EMPTY;
    out.ctrl = None;
    out.files = FileStates::new();
    let (ctrl, files) = (&mut out.ctrl, &mut out.files);
    let (dev, has_queues, version) = read_state_known_into(
        blob,
        max_schema,
        &[
            (TAG_INFLIGHT, INFL_V1),
            (TAG_CONTROLLER, NVMC_V1),
            (TAG_FILES, FILE_V1),
        ],
        &mut out.queues,
        |s: Section<'_>| {
            match s.tag {
                TAG_INFLIGHT => held = decode_held(s.payload)?,
                TAG_CONTROLLER => *ctrl = Some(ControllerState::decode(s.payload)?),
                TAG_FILES => files.decode_into(s.payload)?,
                _ => {}
            }
            Ok(())
        },
    )?;
    out.dev = dev;
    out.version = version;
    out.has_queues = has_queues;
    Ok(held)
}
