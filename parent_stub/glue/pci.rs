// SPDX-License-Identifier: GPL-2.0

//! The PCI functions the parent owns for a child that drives hardware
//! (issue 20: QEMU's emulated NVMe controller, 1b36:0010). Bound by the
//! parent, never by a child, so that everything whose lifetime spans
//! children outlives them: the binding, BAR0's mapping, the MSI-X vectors
//! and the DMA memory. This first step binds, enables the function and bus
//! mastering, maps BAR0, reads the controller's capabilities, allocates the
//! vectors and the DMA arena, and logs `hotup: pci-bound ...`; it never
//! writes the controller's registers, so the controller stays disabled
//! (QEMU's trace shows no start). Handlers, the arena as handles and the
//! children's access through `state_abi` come next.
//!
//! The registration exists only with the parent's `nvme_pci=1`: without
//! it the parent binds nothing, and the kernel's own `nvme` driver may have
//! the device. To move a controller between the two: `rmmod hotup_parent`
//! (or unbind it), `echo nvme > /sys/bus/pci/devices/BDF/driver_override`,
//! `echo BDF > /sys/bus/pci/drivers/nvme/bind`; back with
//! `driver_override=hotup_parent` and its `bind`.

use kernel::{
    device::Core,
    dma::{Coherent, DmaMask},
    io::Io,
    pci,
    prelude::*,
};

/// BAR0 as mapped: the controller's registers (0..0x1000) and the first
/// doorbells; QEMU's BAR0 is larger, 0x2000 covers 256 queues' doorbells
/// at the stride QEMU reports (4 bytes).
const BAR0_SIZE: usize = 0x2000;
/// The controller's registers (NVMe 2.0, section 3.1).
const REG_CAP: usize = 0x0;
const REG_VS: usize = 0x8;
const REG_CC: usize = 0x14;
const REG_CSTS: usize = 0x1c;

/// Most MSI-X vectors: one for the admin queue and one per I/O queue
/// pair, a pair per CPU (at most 8).
fn max_vectors() -> u32 {
    1 + kernel::cpu::nr_cpu_ids().clamp(1, 8)
}

/// Pages of DMA memory per controller, allocated at probe so that no
/// upgrade allocates: one identify buffer, the admin queue pair, a
/// submission and a completion queue per vector, and a PRP page per tag
/// (64 tags per queue).
const fn arena_pages(vectors: u32) -> usize {
    1 + 2 + 2 * vectors as usize + 64 * vectors as usize
}

/// One bound controller: what it holds lives until unbind.
pub(crate) struct Controller<'bound> {
    bar: pci::Bar<'bound, BAR0_SIZE>,
    arena: Coherent<[u8]>,
    vectors: u32,
}

impl<'bound> Controller<'bound> {
    /// Enables the function and bus mastering, maps BAR0, allocates the
    /// vectors and the arena; touches no controller register but reads.
    fn bind(pdev: &'bound pci::Device<Core<'_>>) -> Result<Self> {
        pdev.enable_device_mem()?;
        pdev.set_master();
        // SAFETY: no DMA allocation or mapping for this device runs
        // concurrently: probe runs once per device, this driver allocates
        // only below (the arena, after this call, on this thread), and no
        // other driver has the device while it is bound here.
        unsafe { kernel::dma::Device::dma_set_mask_and_coherent(pdev, DmaMask::new::<64>())? };
        let bar = pdev.iomap_region_sized::<BAR0_SIZE>(0, c"hotup_parent")?;
        let cap = bar.read64(REG_CAP);
        let (vs, cc, csts) = (bar.read32(REG_VS), bar.read32(REG_CC), bar.read32(REG_CSTS));
        let msix = pci::IrqTypes::default().with(pci::IrqType::MsiX);
        // As many as the controller offers, up to max_vectors(): asked
        // for an exact count, so the count is known (the range 7.2
        // returns does not tell it).
        let mut vectors = max_vectors();
        while pdev.alloc_irq_vectors(vectors, vectors, msix).is_err() {
            vectors -= 1;
            if vectors == 0 {
                return Err(ENOSPC);
            }
        }
        let pages = arena_pages(vectors);
        let arena = Coherent::<u8>::zeroed_slice(pdev.as_ref(), pages * 4096, GFP_KERNEL)?;
        crate::hotup_event!(
            "pci-bound dev={} vendor=0x1b36 device=0x0010 vs={}.{} mqes={} dstrd={} cc=0x{:x} csts=0x{:x} vectors={} arena_kib={}",
            pdev.as_ref().name().to_str().unwrap_or("?"),
            vs >> 16,
            (vs >> 8) & 0xff,
            (cap & 0xffff) + 1,
            (cap >> 32) & 0xf,
            cc,
            csts,
            vectors,
            pages * 4
        );
        Ok(Controller {
            bar,
            arena,
            vectors,
        })
    }
}

/// The parent's PCI driver (registered with `nvme_pci=1`).
pub(crate) struct NvmeDriver;

kernel::pci_device_table!(
    PCI_TABLE,
    MODULE_PCI_TABLE,
    <NvmeDriver as pci::Driver>::IdInfo,
    [(pci::DeviceId::from_id(pci::Vendor::REDHAT, 0x0010), ())]
);

impl pci::Driver for NvmeDriver {
    type IdInfo = ();
    type Data<'bound> = Controller<'bound>;
    const ID_TABLE: pci::IdTable<Self::IdInfo> = &PCI_TABLE;

    fn probe<'bound>(
        pdev: &'bound pci::Device<Core<'_>>,
        _info: &'bound Self::IdInfo,
    ) -> impl PinInit<Self::Data<'bound>, Error> + 'bound {
        Controller::bind(pdev)
    }

    fn unbind<'bound>(dev: &'bound pci::Device<Core<'_>>, this: Pin<&Self::Data<'bound>>) {
        crate::hotup_event!(
            "pci-unbound dev={} cc=0x{:x} vectors={} arena_kib={}",
            dev.as_ref().name().to_str().unwrap_or("?"),
            this.bar.read32(REG_CC),
            this.vectors,
            this.arena.size() / 1024
        );
    }
}
