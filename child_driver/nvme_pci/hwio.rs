// SPDX-License-Identifier: GPL-2.0

//! The NVMe child's reach into the hardware the parent owns: the parent's
//! services (ABI 1.3) and the DMA arena, wrapped once here so the driver
//! (`ctrl.rs`) has no `unsafe`. Registers go through the parent (checked:
//! never CC, never past BAR0, nothing after an unbind); the arena is
//! memory the device reads and writes concurrently, so every access is
//! volatile and bounds-checked.

use crate::state_abi::{HwInfo, ParentServices};
use core::mem::offset_of;
use core::sync::atomic::{AtomicPtr, Ordering};
use kernel::prelude::*;

/// The parent's services, once it handed them over.
pub(crate) struct Services(pub(crate) AtomicPtr<ParentServices>);

/// This module's services: the parent writes them at registration
/// (`hotup_register_child`), before the first adopt; every controller
/// this child drives uses them.
pub(crate) static SERVICES: Services = Services(AtomicPtr::new(core::ptr::null_mut()));

/// Whether the parent's table reaches the (pointer-sized) entry at `off`.
fn covers(s: &ParentServices, off: usize) -> bool {
    s.size as usize >= off + core::mem::size_of::<usize>()
}

/// A C return code as a `Result`.
fn rc(v: i32) -> Result {
    if v == 0 {
        Ok(())
    } else if (-4095..0).contains(&v) {
        Err(Error::from_errno(v))
    } else {
        Err(EIO)
    }
}

impl Services {
    /// The table, if the parent handed it over and it has the hardware
    /// services (a 1.3 parent).
    pub(crate) fn get(&self) -> Option<&ParentServices> {
        self.table()
            .filter(|s| covers(s, offset_of!(ParentServices, dma_unmap)))
    }

    /// The table, whatever the parent's minor.
    fn table(&self) -> Option<&ParentServices> {
        let p = self.0.load(Ordering::Acquire);
        if p.is_null() {
            return None;
        }
        // SAFETY: the parent stores a pointer to its services table, which
        // lives as long as the parent module, which outlives this child.
        Some(unsafe { &*p })
    }

    /// Device `dev`'s description.
    pub(crate) fn hw_info(&self, dev: u32) -> Result<HwInfo> {
        let f = self.get().and_then(|s| s.hw_info).ok_or(ENODEV)?;
        let mut out = HwInfo::ZEROED;
        // SAFETY: the parent's service, with a valid out pointer.
        rc(unsafe { f(dev, &mut out) })?;
        Ok(out)
    }

    /// A 32-bit register of device `dev`.
    pub(crate) fn read32(&self, dev: u32, off: u32) -> Result<u32> {
        let f = self.get().and_then(|s| s.mmio_read).ok_or(ENODEV)?;
        let mut v = 0;
        // SAFETY: the parent's service, with a valid out pointer.
        rc(unsafe { f(dev, off, &mut v) })?;
        Ok(v)
    }

    /// Writes a 32-bit register (a doorbell, AQA, ASQ, ACQ) of `dev`.
    pub(crate) fn write32(&self, dev: u32, off: u32, val: u32) -> Result {
        let f = self.get().and_then(|s| s.mmio_write).ok_or(ENODEV)?;
        // SAFETY: the parent's service; it checks every argument.
        rc(unsafe { f(dev, off, val) })
    }

    /// Device `dev`'s namespace geometry, for the parent's disk (a 1.4
    /// parent; ENODEV from an older one, whose disk this child cannot
    /// size).
    pub(crate) fn disk(&self, dev: u32, lba_shift: u32, blocks: u64) -> Result {
        let f = self
            .table()
            .filter(|s| covers(s, offset_of!(ParentServices, hw_disk)))
            .and_then(|s| s.hw_disk)
            .ok_or(ENODEV)?;
        // SAFETY: the parent's service; it checks every argument.
        rc(unsafe { f(dev, lba_shift, blocks) })
    }

    /// Whether device `dev` is bound and not closed (a 1.4 parent; an
    /// older one refuses only through its MMIO service: taken as live).
    pub(crate) fn live(&self, dev: u32) -> bool {
        match self
            .table()
            .filter(|s| covers(s, offset_of!(ParentServices, hw_live)))
            .and_then(|s| s.hw_live)
        {
            // SAFETY: the parent's service; it checks `dev`.
            Some(f) => (unsafe { f(dev) }) != 0,
            None => true,
        }
    }

    /// Whether the parent says which disk a request or call is for (1.4).
    pub(crate) fn has_disks(&self) -> bool {
        self.table().is_some_and(|s| s.abi_minor >= 4)
    }

    /// The parent enables controller `dev` with configuration `cc`.
    pub(crate) fn enable(&self, dev: u32, cc: u32) -> Result {
        let f = self.get().and_then(|s| s.hw_enable).ok_or(ENODEV)?;
        // SAFETY: the parent's service; it checks every argument.
        rc(unsafe { f(dev, cc) })
    }

    /// Maps a request's segment for DMA; its bus address.
    pub(crate) fn dma_map(
        &self,
        dev: u32,
        addr: *mut u8,
        len: u32,
        to_device: bool,
    ) -> Result<u64> {
        let f = self.get().and_then(|s| s.dma_map).ok_or(ENODEV)?;
        let mut out = 0;
        // SAFETY: `addr` is a segment of a request in flight (valid until
        // its completion, after the unmap), `out` a valid out pointer.
        rc(unsafe { f(dev, addr, len, u32::from(to_device), &mut out) })?;
        Ok(out)
    }

    /// Undoes a [`Services::dma_map`].
    pub(crate) fn dma_unmap(&self, dev: u32, dma: u64, len: u32, to_device: bool) {
        if let Some(f) = self.get().and_then(|s| s.dma_unmap) {
            // SAFETY: the same mapping `dma_map` made (the caller's record).
            unsafe { f(dev, dma, len, u32::from(to_device)) };
        }
    }

    /// Completes the parent's request `cookie`.
    pub(crate) fn complete(&self, cookie: u64, status: i32) {
        if let Some(f) = self.table().and_then(|s| s.complete) {
            // SAFETY: the parent's service; any cookie is checked there.
            unsafe { f(cookie, status) };
        }
    }
}

/// The device's DMA arena as the parent described it.
#[derive(Clone, Copy)]
pub(crate) struct Arena {
    cpu: *mut u8,
    dma: u64,
    len: usize,
}

// SAFETY: the arena is parent-owned memory valid from the parent's probe to
// its unload (which cannot come while this child is loaded); every access
// is a bounds-checked volatile read or write, safe from any thread.
unsafe impl Send for Arena {}
// SAFETY: see `Send`.
unsafe impl Sync for Arena {}

impl Arena {
    /// The arena of `info`; `None` if it is not page-sized or not aligned.
    pub(crate) fn new(info: &HwInfo) -> Option<Arena> {
        let len = usize::try_from(info.arena_len).ok()?;
        (!info.arena_cpu.is_null() && len % 4096 == 0 && info.arena_dma % 4096 == 0).then_some(
            Arena {
                cpu: info.arena_cpu,
                dma: info.arena_dma,
                len,
            },
        )
    }

    /// Its length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The bus address of byte `off`.
    pub(crate) fn dma(&self, off: usize) -> u64 {
        self.dma + off as u64
    }

    /// Whether `n` bytes at `off` are inside, `off` aligned to `align`.
    fn fits(&self, off: usize, n: usize, align: usize) -> bool {
        off % align == 0 && off.checked_add(n).is_some_and(|e| e <= self.len)
    }

    /// The 32-bit word at `off` (0 if outside).
    pub(crate) fn read32(&self, off: usize) -> u32 {
        if !self.fits(off, 4, 4) {
            return 0;
        }
        // SAFETY: in bounds and aligned (checked); the arena is valid
        // (see `Send`); the device may write it concurrently, hence volatile.
        unsafe { core::ptr::read_volatile(self.cpu.add(off).cast::<u32>()) }
    }

    /// Writes the 32-bit word at `off` (nothing if outside).
    pub(crate) fn write32(&self, off: usize, v: u32) {
        if self.fits(off, 4, 4) {
            // SAFETY: as in `read32`.
            unsafe { core::ptr::write_volatile(self.cpu.add(off).cast::<u32>(), v) };
        }
    }

    /// Writes the 64-bit word at `off` (nothing if outside).
    pub(crate) fn write64(&self, off: usize, v: u64) {
        self.write32(off, v as u32);
        self.write32(off + 4, (v >> 32) as u32);
    }

    /// `dst.len()` bytes from `off` (zeroes outside).
    pub(crate) fn read_bytes(&self, off: usize, dst: &mut [u8]) {
        for (i, b) in dst.iter_mut().enumerate() {
            let w = self.read32((off + i) & !3);
            *b = (w >> (8 * ((off + i) & 3))) as u8;
        }
    }

    /// Writes `src` at `off`, a multiple of 4 (nothing outside; a last
    /// partial word is zero-padded).
    pub(crate) fn write_bytes(&self, off: usize, src: &[u8]) {
        for (i, c) in src.chunks(4).enumerate() {
            let mut w = [0u8; 4];
            for (d, b) in w.iter_mut().zip(c) {
                *d = *b;
            }
            self.write32(off + 4 * i, u32::from_le_bytes(w));
        }
    }
}
