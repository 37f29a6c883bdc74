// SPDX-License-Identifier: GPL-2.0

//! The PCI functions the parent owns for a child that drives hardware
//! (QEMU's emulated NVMe controller, 1b36:0010). Bound by the parent, never
//! by a child, so that everything whose lifetime spans children outlives
//! them: the binding, BAR0's mapping, the MSI-X vectors and their handlers,
//! and the DMA arena. Probe enables the function and bus mastering, maps
//! BAR0, allocates the vectors, the arena, registers a handler per vector,
//! and hands the device ([`HwDev`]) to the layer above ([`HwHooks`]).
//! Registers are reached only through [`HwDev`]'s checked accessors; the
//! controller's configuration register (CC) only through
//! [`HwDev::enable`] and the unbind, which disables the controller.
//!
//! The registration exists only with the parent's `nvme_pci=1`: without
//! it the parent binds nothing, and the kernel's own `nvme` driver may have
//! the device. To move a controller between the two: `rmmod hotup_parent`
//! (or unbind it), `echo nvme > /sys/bus/pci/devices/BDF/driver_override`,
//! `echo BDF > /sys/bus/pci/drivers/nvme/bind`; back with
//! `driver_override=hotup_parent` and its `bind`. Unload the children
//! first: an unbind under an active child closes the device (the child's
//! later commands fail, ENODEV), waits a bounded time for what the
//! controller holds, then disables it; what is left never completes and
//! the child fails it.

use core::marker::PhantomData;
use core::sync::atomic::{AtomicBool, Ordering::SeqCst};
use kernel::{
    device::{Core, Device},
    devres::Devres,
    dma::{Coherent, DmaMask},
    ffi::c_void,
    io::Io,
    pci,
    prelude::*,
    sync::{aref::ARef, Arc, SpinLock},
    time::{delay::fsleep, Delta},
};

/// BAR0 as mapped: the controller's registers (0..0x1000) and the first
/// doorbells; QEMU's BAR0 is larger, 0x2000 covers 256 queues' doorbells
/// at the stride QEMU reports (4 bytes).
pub(crate) const BAR0_SIZE: usize = 0x2000;
/// The controller's registers (NVMe 2.0, section 3.1).
const REG_CAP: usize = 0x0;
const REG_VS: usize = 0x8;
/// The controller configuration: only [`HwDev::enable`] and the unbind
/// write it.
pub(crate) const REG_CC: usize = 0x14;
const REG_CSTS: usize = 0x1c;
const CC_EN: u32 = 1;
const CSTS_RDY: u32 = 1;
const CSTS_CFS: u32 = 1 << 1;

/// Most MSI-X vectors: one for the admin queue and one per I/O queue
/// pair, a pair per CPU (at most 8). 7.2's Rust hands out only the first
/// and the last vector of an allocation, so every handler is registered
/// through the C half (`pci_request_irq`).
fn max_vectors() -> u32 {
    1 + kernel::cpu::nr_cpu_ids().clamp(1, 8)
}

/// Pages of DMA memory per controller, allocated at probe so that no
/// upgrade allocates: two identify buffers, the admin queue pair, 8 I/O
/// queue pairs (4 pages of SQ, 1 of CQ) and a PRP list page per tag (128).
const ARENA_PAGES: usize = 2 + 2 + 8 * 5 + 128;

extern "C" {
    fn hotup_pci_disable(pdev: *mut c_void);
    fn hotup_pci_clear_master(pdev: *mut c_void);
    fn hotup_dma_map(
        dev: *mut c_void,
        addr: *mut u8,
        len: u32,
        to_device: i32,
        out: *mut u64,
    ) -> i32;
    fn hotup_dma_unmap(dev: *mut c_void, dma: u64, len: u32, to_device: i32);
    fn hotup_request_vector(
        pdev: *mut c_void,
        nr: u32,
        handler: unsafe extern "C" fn(i32, *mut c_void) -> u32,
        cookie: *mut c_void,
    ) -> i32;
    fn hotup_free_vector(pdev: *mut c_void, nr: u32, cookie: *mut c_void);
}

/// What the layer above does with bound devices (`hw.rs`).
pub(crate) trait HwHooks: 'static {
    /// `dev` was bound; `Err` fails the probe.
    fn bound(dev: &Arc<HwDev>) -> Result;
    /// Vector `vector` of `dev` fired (hard-IRQ context). Whether it was
    /// handled.
    fn irq(dev: &HwDev, vector: u32) -> bool;
    /// `dev` is closed (unbind, before its controller is disabled): no new
    /// command reaches it; `waited_ms` were spent waiting for what it held,
    /// `left` requests of it are still in flight.
    fn closing(dev: &HwDev, waited_ms: u32, left: usize);
    /// `dev`'s controller is disabled (unbind): nothing it held completes.
    fn gone(dev: &HwDev);
}

/// How the layer that owns the requests waits for those in flight
/// (`services.rs`): at most `bound_ms`; the milliseconds waited and how many
/// are left.
pub(crate) trait HwDrain: 'static {
    fn drain(bound_ms: u32) -> (u32, usize);
}

/// How long an unbind waits for the requests in flight before it disables
/// the controller (what is left is failed with EIO: a lost completion, a
/// controller that stopped answering).
pub(crate) const UNBIND_DRAIN_MS: u32 = 1000;

/// One bound controller as the layers above see it: alive from probe to
/// the parent's unload (the arena outlives every child); its registers
/// only while bound (the mapping is revoked at unbind).
#[pin_data]
pub(crate) struct HwDev {
    bar: Devres<pci::Bar<'static, BAR0_SIZE>>,
    /// Set at unbind, before the controller is disabled: from then on no
    /// register access and no mapping succeeds.
    dead: AtomicBool,
    /// Serialises writes of CC ([`HwDev::enable`] against the unbind's
    /// disable), so an enable never lands after the disable.
    #[pin]
    cc: SpinLock<()>,
    arena: Coherent<[u8]>,
    dev: ARef<Device>,
    /// Vectors allocated, each with a handler.
    pub(crate) vectors: u32,
    /// PCI ids.
    pub(crate) ids: (u16, u16),
    /// The controller's capabilities (CAP), read at probe.
    pub(crate) cap: u64,
    /// PCI name, NUL-padded.
    pub(crate) name: [u8; 16],
}

impl HwDev {
    /// Whether the unbind has not begun.
    pub(crate) fn is_alive(&self) -> bool {
        !self.dead.load(SeqCst)
    }

    /// `ENODEV` once the unbind began.
    fn alive(&self) -> Result {
        if self.dead.load(SeqCst) {
            Err(ENODEV)
        } else {
            Ok(())
        }
    }

    /// The 32-bit register at `off`, while bound.
    pub(crate) fn read32(&self, off: usize) -> Result<u32> {
        self.alive()?;
        self.bar
            .try_access_with(|b| b.try_read32(off))
            .ok_or(ENODEV)?
    }

    /// Writes `val` to the register at `off`, while bound; never CC.
    pub(crate) fn write32(&self, off: usize, val: u32) -> Result {
        if off == REG_CC {
            return Err(EPERM);
        }
        self.alive()?;
        self.write_reg(off, val)
    }

    fn write_reg(&self, off: usize, val: u32) -> Result {
        self.bar
            .try_access_with(|b| b.try_write32(val, off))
            .ok_or(ENODEV)?
    }

    /// The arena: CPU address, bus address, length.
    pub(crate) fn arena(&self) -> (*mut u8, u64, usize) {
        (
            self.arena.as_mut_ptr().cast::<u8>(),
            self.arena.dma_handle(),
            self.arena.size(),
        )
    }

    /// Waits until CSTS.RDY is `rdy`; `EIO` on a fatal status.
    fn wait_ready(&self, rdy: bool) -> Result {
        self.alive()?;
        self.wait_ready_raw(rdy)
    }

    /// [`HwDev::wait_ready`], also during the unbind.
    fn wait_ready_raw(&self, rdy: bool) -> Result {
        wait_rdy(
            || {
                self.bar
                    .try_access_with(|b| b.try_read32(REG_CSTS))
                    .ok_or(ENODEV)?
            },
            self.cap,
            rdy,
        )
    }

    /// Enables the controller with configuration `cc` (EN added) and waits
    /// until it is ready. `EALREADY` if it is enabled. May sleep.
    pub(crate) fn enable(&self, cc: u32) -> Result {
        {
            let _cc = self.cc.lock();
            self.alive()?;
            if self.read32(REG_CC)? & CC_EN != 0 {
                return Err(Error::from_errno(-crate::state_abi::errno::EALREADY));
            }
            self.write_reg(REG_CC, cc & !CC_EN)?;
            self.write_reg(REG_CC, cc | CC_EN)?;
        }
        self.wait_ready(true)
    }

    /// Marks the device dead (under the CC lock: no enable lands after
    /// it): from now on no register access or mapping for a child
    /// succeeds, so no new command reaches the controller.
    fn close(&self) {
        let _cc = self.cc.lock();
        self.dead.store(true, SeqCst);
    }

    /// Disables the controller (CC.EN clear) of a closed device, waiting
    /// for it, at unbind.
    fn disable(&self) -> Result {
        {
            let _cc = self.cc.lock();
            self.dead.store(true, SeqCst);
            let cc = self
                .bar
                .try_access_with(|b| b.try_read32(REG_CC))
                .ok_or(ENODEV)??;
            if cc & CC_EN == 0 {
                return Ok(());
            }
            self.write_reg(REG_CC, cc & !CC_EN)?;
        }
        self.wait_ready_raw(false)
    }

    fn raw_dev(&self) -> *mut c_void {
        // `Device` is a transparent wrapper of `struct device`.
        core::ptr::from_ref::<Device>(&self.dev)
            .cast::<c_void>()
            .cast_mut()
    }

    /// Maps `len` bytes at `addr` (a request's data) for DMA, while bound.
    pub(crate) fn dma_map(&self, addr: *mut u8, len: u32, to_device: bool) -> Result<u64> {
        self.alive()?;
        let mut out = 0u64;
        // Inside the mapping's RCU section: not after the unbind's release.
        let rc = self.bar.try_access_with(|_| {
            // SAFETY: `raw_dev` is this bound device (referenced by `dev`);
            // the C side checks that `addr` is a direct-map address and
            // writes `out` only on success.
            unsafe { hotup_dma_map(self.raw_dev(), addr, len, i32::from(to_device), &mut out) }
        });
        match rc {
            Some(0) => Ok(out),
            Some(e) => Err(Error::from_errno(e)),
            None => Err(ENODEV),
        }
    }

    /// Undoes a [`HwDev::dma_map`] of `len` bytes at bus address `dma`.
    pub(crate) fn dma_unmap(&self, dma: u64, len: u32, to_device: bool) {
        // SAFETY: `raw_dev` is a live device (referenced by `dev`);
        // unmapping a mapping of it (the caller's contract with the child:
        // same address, length and direction) is allowed after unbind.
        unsafe { hotup_dma_unmap(self.raw_dev(), dma, len, i32::from(to_device)) };
    }
}

/// The handler of one vector: hands it to the layer above.
struct VecIrq<H> {
    dev: Arc<HwDev>,
    vector: u32,
    _hooks: PhantomData<fn() -> H>,
}

/// The C handler of every vector; `cookie` is its [`VecIrq`].
///
/// # Safety
///
/// Only as the handler `VecLine::request` registers, whose cookie is a
/// `VecIrq<H>` that outlives the registration.
unsafe extern "C" fn vec_irq<H: HwHooks>(_irq: i32, cookie: *mut c_void) -> u32 {
    // SAFETY: per the contract: the box `VecLine` keeps until after
    // `pci_free_irq`, which waits for this handler.
    let v = unsafe { &*cookie.cast::<VecIrq<H>>() };
    if H::irq(&v.dev, v.vector) {
        kernel::bindings::irqreturn_IRQ_HANDLED
    } else {
        kernel::bindings::irqreturn_IRQ_NONE
    }
}

/// A handler registered on one vector; freed on drop (before the driver
/// data, thus before devres frees the vectors).
struct VecLine<H: HwHooks> {
    pdev: ARef<pci::Device>,
    nr: u32,
    handler: KBox<VecIrq<H>>,
}

impl<H: HwHooks> VecLine<H> {
    fn request(pdev: &pci::Device<Core<'_>>, nr: u32, handler: VecIrq<H>) -> Result<Self> {
        let handler = KBox::new(handler, GFP_KERNEL)?;
        let cookie = core::ptr::from_ref::<VecIrq<H>>(&handler)
            .cast::<c_void>()
            .cast_mut();
        let raw = core::ptr::from_ref(pdev).cast::<c_void>().cast_mut();
        // SAFETY: `raw` is the device being probed, whose vectors were
        // allocated (`nr` below their count); `vec_irq::<H>` gets `cookie`,
        // a `VecIrq<H>` boxed in the returned line, freed only after
        // `hotup_free_vector` in its drop.
        let rc = unsafe { hotup_request_vector(raw, nr, vec_irq::<H>, cookie) };
        if rc != 0 {
            return Err(Error::from_errno(rc));
        }
        Ok(VecLine {
            pdev: pdev.into(),
            nr,
            handler,
        })
    }
}

impl<H: HwHooks> Drop for VecLine<H> {
    fn drop(&mut self) {
        let raw = core::ptr::from_ref::<pci::Device>(&self.pdev)
            .cast::<c_void>()
            .cast_mut();
        let cookie = core::ptr::from_ref::<VecIrq<H>>(&self.handler)
            .cast::<c_void>()
            .cast_mut();
        // SAFETY: the registration `request` made with this device, vector
        // and cookie; the vectors are freed by devres only after the
        // driver data (which holds this line) is dropped.
        unsafe { hotup_free_vector(raw, self.nr, cookie) };
    }
}

/// One bound controller's driver data: the device and its handlers.
pub(crate) struct Controller<H: HwHooks> {
    hw: Arc<HwDev>,
    _irqs: KVec<VecLine<H>>,
}

/// The function's enable and bus mastering, undone when devres releases
/// it: registered right after the enable, so released last (after the
/// vectors and BAR0), on unbind and on a failed probe alike (7.2's Rust
/// has no disable; `pcim_enable_device` would also manage MSI, which the
/// vectors' own registration frees).
struct Enabled(ARef<pci::Device>);

/// Clears the function's bus mastering (`pci_clear_master`).
fn clear_master(dev: &pci::Device<Core<'_>>) {
    let raw = core::ptr::from_ref::<pci::Device<Core<'_>>>(dev)
        .cast::<c_void>()
        .cast_mut();
    // SAFETY: `dev` is a bound, enabled PCI device (its unbind runs);
    // `pci::Device` is transparent over `struct pci_dev`.
    unsafe { hotup_pci_clear_master(raw) };
}

impl Drop for Enabled {
    fn drop(&mut self) {
        let raw = core::ptr::from_ref::<pci::Device>(&self.0)
            .cast::<c_void>()
            .cast_mut();
        // SAFETY: the device (referenced) was enabled at probe, once per
        // `Enabled`; its controller is disabled by now (unbind) or was
        // never enabled (probe).
        unsafe { hotup_pci_disable(raw) };
    }
}

/// MSI-X vectors, asked for an exact count so the count is known (the
/// range 7.2 returns does not tell it): `max_vectors()`, fewer only when
/// the device has fewer (ENOSPC, ERANGE), any other error is the probe's.
fn alloc_vectors(pdev: &pci::Device<Core<'_>>) -> Result<u32> {
    let msix = pci::IrqTypes::default().with(pci::IrqType::MsiX);
    let mut vectors = max_vectors();
    loop {
        match pdev.alloc_irq_vectors(vectors, vectors, msix) {
            Ok(_) => return Ok(vectors),
            Err(e) if vectors > 1 && (e == ENOSPC || e == ERANGE) => vectors -= 1,
            Err(e) => return Err(e),
        }
    }
}

/// A controller left running by its last owner, stopped before this
/// driver hands out DMA memory (it may still point at the old owner's).
fn stop_left_running(bar: &pci::Bar<'_, BAR0_SIZE>, cc: u32, cap: u64) -> Result {
    bar.try_write32(cc & !CC_EN, REG_CC)?;
    wait_rdy(|| bar.try_read32(REG_CSTS), cap, false)
}

/// Polls CSTS (`read`) until RDY is `rdy`, within the controller's own
/// timeout (CAP.TO, 500 ms units, at least 500 ms); `EIO` on a fatal
/// status (CFS; all ones is a device gone, not a fatal status).
fn wait_rdy(read: impl Fn() -> Result<u32>, cap: u64, rdy: bool) -> Result {
    let timeout_ms = ((cap >> 24) & 0xff).max(1) as u32 * 500;
    let mut waited = 0;
    loop {
        let csts = read()?;
        if csts & CSTS_CFS != 0 && csts != u32::MAX {
            return Err(EIO);
        }
        if (csts & CSTS_RDY != 0) == rdy {
            return Ok(());
        }
        if waited >= timeout_ms {
            return Err(ETIMEDOUT);
        }
        fsleep(Delta::from_millis(1));
        waited += 1;
    }
}

/// Probe: enables the function and bus mastering, maps BAR0, disables a
/// controller someone left running, allocates the vectors, the arena and
/// the handlers, and hands the device to the layer above.
fn bind<H: HwHooks>(pdev: &pci::Device<Core<'_>>) -> Result<Controller<H>> {
    if pdev.pci_class() != pci::Class::STORAGE_EXPRESS {
        return Err(ENODEV);
    }
    pdev.enable_device_mem()?;
    kernel::devres::register(pdev.as_ref(), Enabled(pdev.into()), GFP_KERNEL)?;
    // SAFETY: no DMA allocation or mapping for this device runs
    // concurrently: probe and unbind are serialised by the device lock,
    // the previous binding's DMA users are gone (its controller disabled
    // at unbind), and this driver allocates only below (the arena, after
    // this call, on this thread).
    unsafe { kernel::dma::Device::dma_set_mask_and_coherent(pdev, DmaMask::new::<64>())? };
    let bar = pdev.iomap_region_sized::<BAR0_SIZE>(0, c"hotup_parent")?;
    let cap = bar.read64(REG_CAP);
    let (vs, cc, csts) = (bar.read32(REG_VS), bar.read32(REG_CC), bar.read32(REG_CSTS));
    let vectors = alloc_vectors(pdev)?;
    if cc & CC_EN != 0 || csts & CSTS_RDY != 0 {
        stop_left_running(&bar, cc, cap)?;
    }
    // Only once no one else's controller runs: it could DMA meanwhile.
    pdev.set_master();
    let arena = Coherent::<u8>::zeroed_slice(pdev.as_ref(), ARENA_PAGES * 4096, GFP_KERNEL)?;
    let mut name = [0u8; 16];
    let pname = pdev.as_ref().name().to_bytes();
    for (d, s) in name.iter_mut().zip(pname.iter().take(15)) {
        *d = *s;
    }
    let hw = Arc::pin_init(
        try_pin_init!(HwDev {
            bar: bar.into_devres()?,
            dead: AtomicBool::new(false),
            cc <- kernel::new_spinlock!(()),
            arena,
            dev: pdev.as_ref().into(),
            vectors,
            ids: (pdev.vendor_id().as_raw(), pdev.device_id()),
            cap,
            name,
        }),
        GFP_KERNEL,
    )?;
    let mut irqs = KVec::with_capacity(vectors as usize, GFP_KERNEL)?;
    for v in 0..vectors {
        let handler = VecIrq::<H> {
            dev: hw.clone(),
            vector: v,
            _hooks: PhantomData,
        };
        irqs.push(VecLine::request(pdev, v, handler)?, GFP_KERNEL)?;
    }
    H::bound(&hw)?;
    crate::hotup_event!(
        "pci-bound dev={} vendor=0x{:04x} device=0x{:04x} vs={}.{} max_queue_entries={} dstrd={} cc=0x{:x} csts=0x{:x} vectors={} arena_kib={}",
        pdev.as_ref().name().to_str().unwrap_or("?"),
        hw.ids.0,
        hw.ids.1,
        vs >> 16,
        (vs >> 8) & 0xff,
        (cap & 0xffff) + 1,
        (cap >> 32) & 0xf,
        cc,
        csts,
        vectors,
        ARENA_PAGES * 4
    );
    Ok(Controller { hw, _irqs: irqs })
}

/// The parent's PCI driver (registered with `nvme_pci=1`).
pub(crate) struct NvmeDriver<H, D>(PhantomData<fn() -> (H, D)>);

kernel::pci_device_table!(
    PCI_TABLE,
    MODULE_PCI_TABLE,
    (),
    [(pci::DeviceId::from_id(pci::Vendor::REDHAT, 0x0010), ())]
);

impl<H: HwHooks, D: HwDrain> pci::Driver for NvmeDriver<H, D> {
    type IdInfo = ();
    type Data<'bound> = Controller<H>;
    const ID_TABLE: pci::IdTable<Self::IdInfo> = &PCI_TABLE;

    fn probe<'bound>(
        pdev: &'bound pci::Device<Core<'_>>,
        _info: &'bound Self::IdInfo,
    ) -> impl PinInit<Self::Data<'bound>, Error> + 'bound {
        bind::<H>(pdev)
    }

    fn unbind<'bound>(dev: &'bound pci::Device<Core<'_>>, this: Pin<&Self::Data<'bound>>) {
        // No new command, and what the controller holds finishes first
        // (bounded), as the kernel's nvme driver waits before it deletes
        // its queues: a controller reset with reads and writes in flight
        // is undefined (QEMU's emulation frees the queues under them).
        this.hw.close();
        let (waited_ms, left) = D::drain(UNBIND_DRAIN_MS);
        H::closing(&this.hw, waited_ms, left);
        let disabled = this.hw.disable();
        // A controller that did not disable (ETIMEDOUT, CFS) may still
        // DMA: no bus mastering before the pages it could write are freed.
        // (Not after a clean disable: clearing it then made the QEMU guest
        // die silently in `nvme-faults`' unbind, not yet understood.)
        if disabled.is_err() {
            clear_master(dev);
        }
        // Disabled: what the controller held never completes; the child
        // that owns it fails it now, so no drain waits for it forever.
        H::gone(&this.hw);
        crate::hotup_event!(
            "pci-unbound dev={} disabled={} vectors={} arena_kib={}",
            dev.as_ref().name().to_str().unwrap_or("?"),
            match disabled {
                Ok(()) => 0,
                Err(e) => e.to_errno(),
            },
            this.hw.vectors,
            this.hw.arena.size() / 1024
        );
        // `Enabled` clears bus mastering and disables the function once
        // devres releases it, after the vectors and BAR0.
        let _ = dev;
    }
}
