// SPDX-License-Identifier: GPL-2.0

//! Preserved memory: regions the parent owns so that the disk's data outlives
//! any child. Children refer to them by opaque handles, which the parent
//! checks on every lookup; a handle is never a pointer (`logic/regions.rs`).
//!
//! A region allocated while a child adopts is tentative until the adopt
//! succeeds: a failed adopt frees what it allocated (`abort`), so a refused
//! child leaks nothing. Regions are freed by the child that owns them
//! (`mem_free`), by the operator's `discard-stash`, or with the parent.

use kernel::{alloc::flags, prelude::*};

/// How many regions can exist at once (a child needs one for its data).
const MAX_REGIONS: usize = 8;

/// The parent's preserved regions.
pub(crate) type Regions = super::logic::regions::Table<VVec<u8>, MAX_REGIONS>;

impl Regions {
    /// Allocates a zeroed region of `len` bytes and returns its handle.
    pub(crate) fn alloc(&mut self, len: u64) -> Result<u64> {
        let len = usize::try_from(len).map_err(|_| EINVAL)?;
        if len == 0 {
            return Err(EINVAL);
        }
        self.insert_with(ENOSPC, || {
            let mut mem = VVec::<u8>::with_capacity(len, GFP_KERNEL | flags::__GFP_ZERO)?;
            // SAFETY: the capacity is at least `len` and `__GFP_ZERO` zeroed
            // the allocation, so the first `len` bytes are initialised `u8`s.
            unsafe { mem.inc_len(len) };
            Ok(mem)
        })
    }

    /// The base address and length of the region `handle` names.
    pub(crate) fn map(&mut self, handle: u64) -> Result<(*mut u8, u64)> {
        let mem = self.get_mut(handle).ok_or(ENOENT)?;
        Ok((mem.as_mut_ptr(), mem.len() as u64))
    }

    /// Frees the region `handle` names.
    pub(crate) fn free(&mut self, handle: u64) -> Result {
        self.remove(handle).map(drop).ok_or(ENOENT)
    }

    /// Frees every region (the operator's `discard-stash`); returns how
    /// many and their total size.
    pub(crate) fn free_all(&mut self) -> (usize, u64) {
        let usage = self.usage();
        self.clear();
        usage
    }

    /// Number of regions and their total size, for status.
    pub(crate) fn usage(&self) -> (usize, u64) {
        self.iter()
            .fold((0, 0), |(n, b), m| (n + 1, b + m.len() as u64))
    }
}
