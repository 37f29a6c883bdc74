// SPDX-License-Identifier: GPL-2.0

//! Preserved memory: regions the parent owns so that the disk's data outlives
//! any child. Children refer to them by opaque handles, which the parent
//! checks on every lookup; a handle is never a pointer.
//!
//! A region allocated while a child adopts is tentative until the adopt
//! succeeds: a failed adopt frees what it allocated ([`Regions::abort`]), so
//! a refused child leaks nothing. Regions are freed by the child that owns
//! them (`mem_free`), by the operator's `discard-stash`, or with the parent.

use kernel::{alloc::flags, prelude::*};

/// How many regions can exist at once (a child needs one for its data).
const MAX_REGIONS: usize = 8;

struct Region {
    handle: u64,
    mem: VVec<u8>,
    /// Allocated during an adopt that has not succeeded yet.
    tentative: bool,
}

/// The parent's preserved regions.
pub(crate) struct Regions {
    slots: [Option<Region>; MAX_REGIONS],
    next_gen: u32,
    /// An adopt is running: new regions are tentative.
    adopting: bool,
}

impl Regions {
    pub(crate) const fn new() -> Self {
        Self {
            slots: [const { None }; MAX_REGIONS],
            next_gen: 1,
            adopting: false,
        }
    }

    /// Allocates a zeroed region of `len` bytes and returns its handle.
    pub(crate) fn alloc(&mut self, len: u64) -> Result<u64> {
        let len = usize::try_from(len).map_err(|_| EINVAL)?;
        if len == 0 {
            return Err(EINVAL);
        }
        let (idx, slot) = self
            .slots
            .iter_mut()
            .enumerate()
            .find(|(_, s)| s.is_none())
            .ok_or(ENOSPC)?;
        let mut mem = VVec::<u8>::with_capacity(len, GFP_KERNEL | flags::__GFP_ZERO)?;
        // SAFETY: the capacity is at least `len` and `__GFP_ZERO` zeroed the
        // allocation, so the first `len` bytes are initialised `u8`s.
        unsafe { mem.inc_len(len) };
        let handle = (u64::from(self.next_gen) << 8) | idx as u64;
        self.next_gen = self.next_gen.wrapping_add(1).max(1);
        *slot = Some(Region {
            handle,
            mem,
            tentative: self.adopting,
        });
        Ok(handle)
    }

    fn find(&mut self, handle: u64) -> Option<&mut Region> {
        let idx = usize::try_from(handle & 0xff).ok()?;
        self.slots
            .get_mut(idx)?
            .as_mut()
            .filter(|r| r.handle == handle)
    }

    /// The base address and length of the region `handle` names.
    pub(crate) fn map(&mut self, handle: u64) -> Result<(*mut u8, u64)> {
        let r = self.find(handle).ok_or(ENOENT)?;
        Ok((r.mem.as_mut_ptr(), r.mem.len() as u64))
    }

    /// Frees the region `handle` names.
    pub(crate) fn free(&mut self, handle: u64) -> Result {
        let idx = usize::try_from(handle & 0xff).map_err(|_| ENOENT)?;
        self.find(handle).ok_or(ENOENT)?;
        if let Some(s) = self.slots.get_mut(idx) {
            *s = None;
        }
        Ok(())
    }

    /// An adopt begins: regions allocated from now on are tentative.
    pub(crate) fn begin_adopt(&mut self) {
        self.adopting = true;
    }

    /// The adopt succeeded: its regions are the device's now.
    pub(crate) fn commit(&mut self) {
        self.adopting = false;
        for r in self.slots.iter_mut().flatten() {
            r.tentative = false;
        }
    }

    /// The adopt failed: frees the regions it allocated; returns how many.
    pub(crate) fn abort(&mut self) -> usize {
        self.adopting = false;
        let mut n = 0;
        for s in self.slots.iter_mut() {
            if s.as_ref().is_some_and(|r| r.tentative) {
                *s = None;
                n += 1;
            }
        }
        n
    }

    /// Frees every region (the operator's `discard-stash`); returns how
    /// many and their total size.
    pub(crate) fn free_all(&mut self) -> (usize, u64) {
        let usage = self.usage();
        for s in self.slots.iter_mut() {
            *s = None;
        }
        usage
    }

    /// Number of regions and their total size, for status.
    pub(crate) fn usage(&self) -> (usize, u64) {
        self.slots
            .iter()
            .flatten()
            .fold((0, 0), |(n, b), r| (n + 1, b + r.mem.len() as u64))
    }
}
