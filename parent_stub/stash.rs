// SPDX-License-Identifier: GPL-2.0

//! The stash: the state a leaving child exported, waiting for the next one,
//! and the last good state, the fallback when an export fails or turns out
//! corrupt. The data itself is never in a blob: it lives in preserved
//! regions (`mem.rs`) that the blobs name by handle, so falling back to the
//! last good state loses no byte of the disk, only counters.
//!
//! Every buffer is allocated when the parent loads: a detach, which cannot
//! fail once it has begun (module exit cannot), never allocates.
//!
//! What the next child is offered ([`Stash::choose`]):
//! - a stash that passed the parent's own check (header, checksum): it,
//!   unless the version that wrote it has already refused it (a child that
//!   cannot read its own export wrote a bad blob): then the last good state;
//! - a stash the parent found corrupt: it once (the child's refusal says
//!   why, and the device stays parked), then the last good state;
//! - no stash because the export failed: the last good state;
//! - nothing at all (no child ever attached, or after `discard-stash`):
//!   start empty, which a child may do only while no region exists.

use super::edge::name_str;
use super::state_abi::{
    copy_without_section, held_count, max_blob_len_with_held, BlobReader, MAX_BLOB_LEN, NAME_LEN,
    TAG_INFLIGHT,
};
use kernel::prelude::*;

/// A preallocated blob buffer and the length of its content.
struct Blob {
    buf: KVec<u8>,
    len: usize,
}

impl Blob {
    fn new(cap: usize) -> Result<Self> {
        Ok(Self {
            buf: KVec::from_elem(0u8, cap, GFP_KERNEL)?,
            len: 0,
        })
    }

    fn bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }
}

/// The state of the stash.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum StashState {
    /// Nothing waiting (no detach since the last attach).
    Empty,
    /// An exported blob that passed the parent's check.
    Valid,
    /// An exported blob that failed the parent's check.
    Corrupt(&'static str),
    /// The last export failed: there is no blob.
    ExportFailed(i32),
}

/// What the next child adopts.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Offer {
    /// The stash.
    Stash,
    /// The last good state, and why.
    LastGood(&'static str),
    /// Nothing: the child starts empty.
    Fresh,
    /// Nothing can be offered safely: regions exist but no state names them.
    Refuse,
}

pub(crate) struct Stash {
    /// Where the next export is written (swapped with `stash` after it).
    scratch: Blob,
    stash: Blob,
    pub(crate) state: StashState,
    /// Who exported the stash.
    pub(crate) from: ([u8; NAME_LEN], u32),
    /// Adopts of the current stash that failed.
    pub(crate) refusals: u32,
    /// Whether a child of the stash's producer version refused it.
    refused_by_producer: bool,
    /// Requests the stash hands over (its `INFL` section's count).
    pub(crate) held: usize,
    last_good: Blob,
}

impl Stash {
    /// Buffers for a device of `tags` tags: an export may hand over one
    /// request per tag (the `INFL` section); the last good state never
    /// holds requests.
    pub(crate) fn new(tags: usize) -> Result<Self> {
        let cap = max_blob_len_with_held(tags);
        Ok(Self {
            scratch: Blob::new(cap)?,
            stash: Blob::new(cap)?,
            state: StashState::Empty,
            from: ([0; NAME_LEN], 0),
            refusals: 0,
            refused_by_producer: false,
            held: 0,
            last_good: Blob::new(MAX_BLOB_LEN)?,
        })
    }

    /// Runs `export` (the leaving child's `export_state`) into the scratch
    /// buffer and makes the result the stash. Never allocates.
    pub(crate) fn export_with(
        &mut self,
        from: ([u8; NAME_LEN], u32),
        export: impl FnOnce(&mut [u8]) -> Result<usize, i32>,
    ) -> StashState {
        self.from = from;
        self.refusals = 0;
        self.refused_by_producer = false;
        match export(&mut self.scratch.buf) {
            Ok(len) => {
                self.scratch.len = len;
                core::mem::swap(&mut self.scratch, &mut self.stash);
                (self.state, self.held) = match BlobReader::parse(self.stash.bytes()) {
                    Ok(r) => (StashState::Valid, held_count(&r)),
                    Err(e) => (StashState::Corrupt(e.as_str()), 0),
                };
            }
            Err(e) => {
                self.stash.len = 0;
                self.held = 0;
                self.state = StashState::ExportFailed(e);
            }
        }
        self.state
    }

    /// A trial export (a standby switch's prepare step) into the scratch
    /// buffer: the blob, or the export's errno. The stash is not touched.
    pub(crate) fn trial(
        &mut self,
        export: impl FnOnce(&mut [u8]) -> Result<usize, i32>,
    ) -> Result<&[u8], i32> {
        let len = export(&mut self.scratch.buf)?;
        self.scratch.len = len;
        BlobReader::parse(self.scratch.bytes()).map_err(|e| e.errno())?;
        Ok(self.scratch.bytes())
    }

    fn has_last_good(&self) -> bool {
        self.last_good.len > 0
    }

    /// What the next child is offered; `regions_exist` says whether any
    /// preserved region exists (then the child must not start empty).
    pub(crate) fn choose(&self, regions_exist: bool) -> Offer {
        match self.state {
            StashState::Valid if self.refused_by_producer && self.has_last_good() => {
                Offer::LastGood("refused-by-producer")
            }
            StashState::Valid => Offer::Stash,
            StashState::Corrupt(_) if self.refusals == 0 => Offer::Stash,
            StashState::Corrupt(_) if self.has_last_good() => Offer::LastGood("corrupt-stash"),
            StashState::ExportFailed(_) if self.has_last_good() => Offer::LastGood("export-failed"),
            StashState::Empty if self.has_last_good() => Offer::LastGood("no-stash"),
            StashState::Empty if !regions_exist => Offer::Fresh,
            _ => Offer::Refuse,
        }
    }

    /// The bytes of an offer (`None` for a fresh start).
    pub(crate) fn bytes_of(&self, o: Offer) -> Option<&[u8]> {
        match o {
            Offer::Stash => Some(self.stash.bytes()),
            Offer::LastGood(_) => Some(self.last_good.bytes()),
            Offer::Fresh | Offer::Refuse => None,
        }
    }

    /// A child of version `version` refused `o`: the stash stays for
    /// another child.
    pub(crate) fn refused(&mut self, o: Offer, version: u32) {
        if o == Offer::Stash {
            self.refusals = self.refusals.saturating_add(1);
            self.refused_by_producer |= version == self.from.1;
        }
    }

    /// A child started fresh: the last good state is what `export` (the
    /// child's, in a schema every version reads) writes, if it parses; the
    /// stash is spent.
    pub(crate) fn adopted_fresh(&mut self, export: impl FnOnce(&mut [u8]) -> Result<usize, i32>) {
        let buf = &mut self.last_good.buf;
        self.last_good.len = export(buf)
            .ok()
            .filter(|&n| buf.get(..n).is_some_and(|b| BlobReader::parse(b).is_ok()))
            .unwrap_or(0);
        self.clear_stash();
    }

    /// The child adopted `o`: it is the last good state now and the stash is
    /// spent.
    pub(crate) fn adopted(&mut self, o: Offer) {
        match o {
            Offer::Stash => {
                // Without the requests it handed over: they are completed
                // by the child that adopted them, and a fallback to this
                // state later must not complete them again.
                let (stash, last_good) = (&self.stash, &mut self.last_good);
                // (It cannot fail for a stash that parsed; if it did, no
                // last good state beats one with stale requests.)
                last_good.len =
                    copy_without_section(stash.bytes(), TAG_INFLIGHT, &mut last_good.buf)
                        .unwrap_or(0);
            }
            Offer::LastGood(_) | Offer::Refuse | Offer::Fresh => {}
        }
        self.clear_stash();
    }

    /// No stash any more (adopted, withdrawn or discarded).
    fn clear_stash(&mut self) {
        self.stash.len = 0;
        self.held = 0;
        self.state = StashState::Empty;
        self.refusals = 0;
        self.refused_by_producer = false;
    }

    /// The export of a standby switch that rolled back: the old child
    /// stays the owner of its state, so its blob is no stash to offer.
    pub(crate) fn withdraw_export(&mut self) {
        self.clear_stash();
    }

    /// Forgets every state (the operator's `discard-stash`); returns how
    /// many bytes of blob were dropped.
    pub(crate) fn discard(&mut self) -> usize {
        let n = self.stash.len + self.last_good.len;
        self.clear_stash();
        self.last_good.len = 0;
        n
    }

    pub(crate) fn stash_bytes(&self) -> usize {
        self.stash.len
    }

    pub(crate) fn last_good_bytes(&self) -> usize {
        self.last_good.len
    }

    pub(crate) fn producer_name(&self) -> &str {
        name_str(&self.from.0)
    }
}
