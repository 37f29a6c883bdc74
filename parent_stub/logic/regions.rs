// SPDX-License-Identifier: GPL-2.0

//! The table of preserved regions (the memory `M` is the caller's): opaque
//! handles, checked on every lookup, and the tentative regions of an adopt
//! in progress, which a failed adopt frees.
//!
//! A handle is `generation << 8 | slot`: two live regions never share one
//! (their slots differ), and a freed region's handle names nothing until
//! the generation (32 bits) wraps.

struct Slot<M> {
    handle: u64,
    mem: M,
    /// Allocated during an adopt that has not succeeded yet.
    tentative: bool,
}

/// At most `N` (at most 256) regions of memory `M`.
pub struct Table<M, const N: usize> {
    slots: [Option<Slot<M>>; N],
    next_gen: u32,
    /// An adopt is running: new regions are tentative.
    adopting: bool,
}

impl<M, const N: usize> Table<M, N> {
    const SLOTS_FIT: () = assert!(N <= 256, "a handle's slot is one byte");

    /// No region.
    pub const fn new() -> Self {
        let () = Self::SLOTS_FIT;
        Self {
            slots: [const { None }; N],
            next_gen: 1,
            adopting: false,
        }
    }

    /// Stores the memory `make` returns in a free slot: its handle, `full`
    /// if no slot is free (then `make` is not called), or `make`'s error.
    pub fn insert_with<E>(
        &mut self,
        full: E,
        make: impl FnOnce() -> Result<M, E>,
    ) -> Result<u64, E> {
        let (idx, slot) = self
            .slots
            .iter_mut()
            .enumerate()
            .find(|(_, s)| s.is_none())
            .ok_or(full)?;
        let mem = make()?;
        let handle = (u64::from(self.next_gen) << 8) | idx as u64;
        self.next_gen = self.next_gen.wrapping_add(1).max(1);
        *slot = Some(Slot {
            handle,
            mem,
            tentative: self.adopting,
        });
        Ok(handle)
    }

    fn slot(&mut self, handle: u64) -> Option<&mut Option<Slot<M>>> {
        let s = self.slots.get_mut(usize::try_from(handle & 0xff).ok()?)?;
        s.as_ref().is_some_and(|r| r.handle == handle).then_some(s)
    }

    /// The memory of the region `handle` names.
    pub fn get_mut(&mut self, handle: u64) -> Option<&mut M> {
        Some(&mut self.slot(handle)?.as_mut()?.mem)
    }

    /// Removes the region `handle` names; `None` if it names none.
    pub fn remove(&mut self, handle: u64) -> Option<M> {
        self.slot(handle)?.take().map(|r| r.mem)
    }

    /// An adopt begins: regions stored from now on are tentative.
    pub fn begin_adopt(&mut self) {
        self.adopting = true;
    }

    /// The adopt succeeded: its regions are the device's now.
    pub fn commit(&mut self) {
        self.adopting = false;
        for r in self.slots.iter_mut().flatten() {
            r.tentative = false;
        }
    }

    /// The adopt failed: removes the regions it stored; returns how many.
    pub fn abort(&mut self) -> usize {
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

    /// Removes every region.
    pub fn clear(&mut self) {
        self.slots.iter_mut().for_each(|s| *s = None);
    }

    /// The memory of every region.
    pub fn iter(&self) -> impl Iterator<Item = &M> {
        self.slots.iter().flatten().map(|r| &r.mem)
    }
}

impl<M, const N: usize> Default for Table<M, N> {
    fn default() -> Self {
        Self::new()
    }
}
