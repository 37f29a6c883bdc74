// SPDX-License-Identifier: GPL-2.0
/*
 * The C half of glue/pci.rs: PCI and DMA facilities that 7.2's Rust does
 * not offer (the device's disable at unbind, mapping a request's data for
 * DMA). pci.rs wraps each once; nothing else calls these.
 */
#include <linux/cpumask.h>
#include <linux/dma-mapping.h>
#include <linux/interrupt.h>
#include <linux/io.h>
#include <linux/pci.h>

void hotup_pci_disable(struct pci_dev *pdev);
void hotup_pci_clear_master(struct pci_dev *pdev);
int hotup_dma_map(struct device *dev, void *addr, u32 len, int to_device, u64 *out);
void hotup_dma_unmap(struct device *dev, u64 dma, u32 len, int to_device);

/*
 * Undoes probe's pci_set_master() and pci_enable_device_mem(): 7.2's Rust
 * enables a device without a managed (pcim_) counterpart, so the driver
 * disables it at unbind, and on a failed probe.
 */
void hotup_pci_disable(struct pci_dev *pdev)
{
	pci_clear_master(pdev);
	pci_disable_device(pdev);
}

/*
 * Stops the function's DMA at unbind before the owning child ends what the
 * controller held (and the block layer frees its pages): a controller that
 * did not disable must not write them.
 */
void hotup_pci_clear_master(struct pci_dev *pdev)
{
	pci_clear_master(pdev);
}

static enum dma_data_direction hotup_dir(int to_device)
{
	return to_device ? DMA_TO_DEVICE : DMA_FROM_DEVICE;
}

/*
 * Maps len bytes at kernel (direct-map) address addr for DMA by dev. The
 * parent's requests carry such addresses (page_address of each bvec).
 */
int hotup_dma_map(struct device *dev, void *addr, u32 len, int to_device, u64 *out)
{
	dma_addr_t dma;

	if (!virt_addr_valid(addr) || !len)
		return -EINVAL;
	dma = dma_map_phys(dev, virt_to_phys(addr), len, hotup_dir(to_device), 0);
	if (dma_mapping_error(dev, dma))
		return -ENOMEM;
	*out = dma;
	return 0;
}

void hotup_dma_unmap(struct device *dev, u64 dma, u32 len, int to_device)
{
	dma_unmap_phys(dev, dma, len, hotup_dir(to_device), 0);
}

int hotup_request_vector(struct pci_dev *pdev, unsigned int nr, irq_handler_t handler, void *cookie);
void hotup_free_vector(struct pci_dev *pdev, unsigned int nr, void *cookie);

/*
 * A handler for vector nr of pdev (any of them: 7.2's Rust reaches only
 * the first and the last of an allocation), named hotup_nvme<nr>. An I/O
 * vector (nr >= 1: queue pair nr - 1) is delivered to CPU nr - 1, where a
 * child submits on that pair (a CPU submits on its number modulo the
 * pairs): the
 * completion then runs where the submitter waits, as the kernel's nvme
 * driver has it with managed affinity (7.2's Rust has no
 * pci_alloc_irq_vectors_affinity). A failure to place it only costs speed.
 */
int hotup_request_vector(struct pci_dev *pdev, unsigned int nr, irq_handler_t handler, void *cookie)
{
	int ret = pci_request_irq(pdev, nr, handler, NULL, cookie, "hotup_nvme%u", nr);

	if (!ret && nr > 0) {
		unsigned int cpu = nr - 1;

		/* CPU p submits on pair p; an offline one: any online CPU. */
		if (cpu >= nr_cpu_ids || !cpu_online(cpu))
			cpu = cpumask_local_spread(nr - 1, NUMA_NO_NODE);
		if (cpu < nr_cpu_ids)
			irq_set_affinity_and_hint(pci_irq_vector(pdev, nr), cpumask_of(cpu));
	}
	return ret;
}

/*
 * Frees it (its affinity hint first: free_irq warns about one left set);
 * waits for a handler still running on another CPU.
 */
void hotup_free_vector(struct pci_dev *pdev, unsigned int nr, void *cookie)
{
	if (nr > 0)
		irq_update_affinity_hint(pci_irq_vector(pdev, nr), NULL);
	pci_free_irq(pdev, nr, cookie);
}
