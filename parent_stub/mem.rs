// SPDX-License-Identifier: GPL-2.0

//! Preserved memory: regions the parent owns so that the disk's data outlives
//! any child. Children refer to them by opaque handles, which the parent
//! checks on every lookup; a handle is never a pointer.

use kernel::{alloc::flags, prelude::*};

/// How many regions can exist at once (a child needs one for its data).
const MAX_REGIONS: usize = 8;

struct Region {
    handle: u64,
    mem: VVec<u8>,
}

/// The parent's preserved regions.
pub(crate) struct Regions {
    slots: [Option<Region>; MAX_REGIONS],
    next_gen: u32,
}

impl Regions {
    pub(crate) const fn new() -> Self {
        Self {
            slots: [const { None }; MAX_REGIONS],
            next_gen: 1,
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
        *slot = Some(Region { handle, mem });
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

    /// Number of regions and their total size, for status.
    pub(crate) fn usage(&self) -> (usize, u64) {
        self.slots
            .iter()
            .flatten()
            .fold((0, 0), |(n, b), r| (n + 1, b + r.mem.len() as u64))
    }
}
