// SPDX-License-Identifier: GPL-2.0

//! The stash: the state a leaving child exported, waiting for the next one,
//! and the last good state, the fallback when an export fails or turns out
//! corrupt. The data itself is never in a blob: it lives in preserved
//! regions that the blobs name by handle, so falling back to the last good
//! state loses no byte of the disk, only counters.
//!
//! The buffers `B` are the caller's, allocated once: a detach, which cannot
//! fail once it has begun, never allocates. How a blob is read is `F`'s.
//!
//! What the next child is offered ([`Stash::choose`]):
//! - a stash that passed the parent's own check (header, checksum): it,
//!   unless the version that wrote it has already refused it (a child that
//!   cannot read its own export wrote a bad blob): then the last good state;
//! - a stash the parent found corrupt: it once (the child's refusal says
//!   why, and the device stays parked), then the last good state;
//! - no stash because the export failed: the last good state;
//! - nothing at all (no child ever attached, or after `discard`): start
//!   empty, which a child may do only while no region exists.

use core::{marker::PhantomData, ops::DerefMut};

/// Why a blob failed the parent's check.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct BadBlob {
    /// For the log.
    pub why: &'static str,
    /// For the caller (a negative errno).
    pub errno: i32,
}

/// How the parent reads a blob (state_abi's container in the kernel).
pub trait Format {
    /// How many requests a well-formed `blob` hands over.
    fn check(blob: &[u8]) -> Result<usize, BadBlob>;
    /// Writes `blob` without the requests it hands over into `out`: the
    /// length, `None` if it does not fit or `blob` is not well-formed.
    fn without_held(blob: &[u8], out: &mut [u8]) -> Option<usize>;
}

/// A buffer and the length of its content.
struct Blob<B> {
    buf: B,
    len: usize,
}

impl<B: DerefMut<Target = [u8]>> Blob<B> {
    fn bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }
}

/// The state of the stash.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum StashState {
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
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Offer {
    /// The stash.
    Stash,
    /// The last good state, and why.
    LastGood(&'static str),
    /// Nothing: the child starts empty.
    Fresh,
    /// Nothing can be offered safely: regions exist but no state names them.
    Refuse,
}

/// The stash and the last good state; `N` is a child name's length.
pub struct Stash<B, F, const N: usize> {
    /// Where the next export is written (swapped with `stash` after it).
    scratch: Blob<B>,
    stash: Blob<B>,
    /// What `stash` holds.
    pub state: StashState,
    /// Who exported the stash (name, version).
    pub from: ([u8; N], u32),
    /// Adopts of the current stash that failed.
    refusals: u32,
    /// Whether a child of the stash's producer version refused it.
    refused_by_producer: bool,
    /// Requests the stash hands over.
    pub held: usize,
    last_good: Blob<B>,
    _f: PhantomData<F>,
}

impl<B: DerefMut<Target = [u8]>, F: Format, const N: usize> Stash<B, F, N> {
    /// Empty, over the buffers for exports (`scratch` and `stash`, of one
    /// size) and for the last good state (which never holds requests).
    pub fn with_buffers(scratch: B, stash: B, last_good: B) -> Self {
        Self {
            scratch: Blob {
                buf: scratch,
                len: 0,
            },
            stash: Blob { buf: stash, len: 0 },
            state: StashState::Empty,
            from: ([0; N], 0),
            refusals: 0,
            refused_by_producer: false,
            held: 0,
            last_good: Blob {
                buf: last_good,
                len: 0,
            },
            _f: PhantomData,
        }
    }

    /// Runs `export` (the leaving child's) into the scratch buffer and
    /// makes the result the stash. The last good state is not touched.
    pub fn export_with(
        &mut self,
        from: ([u8; N], u32),
        export: impl FnOnce(&mut [u8]) -> Result<usize, i32>,
    ) -> StashState {
        self.from = from;
        self.refusals = 0;
        self.refused_by_producer = false;
        let cap = self.scratch.buf.len();
        // A length beyond the buffer is a failed export, not a blob.
        match export(&mut self.scratch.buf).and_then(|n| fits(n, cap)) {
            Ok(len) => {
                self.scratch.len = len;
                core::mem::swap(&mut self.scratch, &mut self.stash);
                (self.state, self.held) = match F::check(self.stash.bytes()) {
                    Ok(held) => (StashState::Valid, held),
                    Err(e) => (StashState::Corrupt(e.why), 0),
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
    /// buffer: the blob, or the errno. Neither state is touched.
    pub fn trial(
        &mut self,
        export: impl FnOnce(&mut [u8]) -> Result<usize, i32>,
    ) -> Result<&[u8], i32> {
        let cap = self.scratch.buf.len();
        let len = export(&mut self.scratch.buf).and_then(|n| fits(n, cap))?;
        self.scratch.len = len;
        F::check(self.scratch.bytes()).map_err(|e| e.errno)?;
        Ok(self.scratch.bytes())
    }

    fn has_last_good(&self) -> bool {
        self.last_good.len > 0
    }

    /// What the next child is offered; `regions_exist` says whether any
    /// preserved region exists (then the child must not start empty).
    pub fn choose(&self, regions_exist: bool) -> Offer {
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
    pub fn bytes_of(&self, o: Offer) -> Option<&[u8]> {
        match o {
            Offer::Stash => Some(self.stash.bytes()),
            Offer::LastGood(_) => Some(self.last_good.bytes()),
            Offer::Fresh | Offer::Refuse => None,
        }
    }

    /// A child of version `version` refused `o`: everything stays for
    /// another child.
    pub fn refused(&mut self, o: Offer, version: u32) {
        if o == Offer::Stash {
            self.refusals = self.refusals.saturating_add(1);
            self.refused_by_producer |= version == self.from.1;
        }
    }

    /// A child started fresh: the last good state is what `export` (the
    /// child's, in a schema every version reads) writes, if it passes the
    /// check and hands over nothing; the stash is spent.
    pub fn adopted_fresh(&mut self, export: impl FnOnce(&mut [u8]) -> Result<usize, i32>) {
        let buf = &mut self.last_good.buf;
        self.last_good.len = export(buf)
            .ok()
            .filter(|&n| buf.get(..n).is_some_and(|b| F::check(b) == Ok(0)))
            .unwrap_or(0);
        self.clear_stash();
    }

    /// The child adopted `o`: it is the last good state now and the stash is
    /// spent.
    pub fn adopted(&mut self, o: Offer) {
        if o == Offer::Stash {
            // Without the requests it handed over: they are completed by
            // the child that adopted them, and a fallback to this state
            // later must not complete them again. (It cannot fail for a
            // stash that passed the check; if it did, no last good state
            // beats one with stale requests.)
            let (stash, last_good) = (&self.stash, &mut self.last_good);
            last_good.len = F::without_held(stash.bytes(), &mut last_good.buf)
                .filter(|&n| n <= last_good.buf.len())
                .unwrap_or(0);
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
    pub fn withdraw_export(&mut self) {
        self.clear_stash();
    }

    /// Forgets every state (the operator's `discard-stash`); returns how
    /// many bytes of blob were dropped.
    pub fn discard(&mut self) -> usize {
        let n = self.stash.len + self.last_good.len;
        self.clear_stash();
        self.last_good.len = 0;
        n
    }

    /// The stash's length.
    pub fn stash_bytes(&self) -> usize {
        self.stash.len
    }

    /// The last good state's length.
    pub fn last_good_bytes(&self) -> usize {
        self.last_good.len
    }
}

/// `EOVERFLOW` (errno-base.h), for an export that claims more than its
/// buffer.
const EOVERFLOW: i32 = 75;

/// `n` if a blob of `n` bytes fits a buffer of `cap`, else `-EOVERFLOW`.
fn fits(n: usize, cap: usize) -> Result<usize, i32> {
    if n <= cap {
        Ok(n)
    } else {
        Err(-EOVERFLOW)
    }
}
