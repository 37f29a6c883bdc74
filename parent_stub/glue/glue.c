// SPDX-License-Identifier: GPL-2.0
/*
 * The C half of the glue (blk.rs is the Rust half): facilities that are
 * inline functions or macros in C, so Rust cannot call them through
 * kernel::bindings. Linked into hotup_parent and, through
 * child_driver/glue.c, into hotup_mono. Nothing else calls these: blk.rs
 * wraps each once.
 */
#include <linux/gfp.h>
#include <linux/lockdep.h>
#include <linux/mm.h>
#include <linux/sched/mm.h>

void *hotup_page_address(struct page *page);
unsigned int hotup_noio_save(void);
void hotup_noio_restore(unsigned int flags);
void hotup_gate_map_prime(void);
void hotup_gate_map_acquire(void);
void hotup_gate_map_release(void);

/* page_address() (a macro without CONFIG_HIGHMEM). */
void *hotup_page_address(struct page *page)
{
	return page_address(page);
}

unsigned int hotup_noio_save(void)
{
	return memalloc_noio_save();
}

void hotup_noio_restore(unsigned int flags)
{
	memalloc_noio_restore(flags);
}

/*
 * "The gate is closed": held by the task that runs a switch while new I/O
 * parks, as the block layer holds q->io_lockdep_map while a queue is
 * frozen. hotup_gate_map_prime() records once that memory reclaim may
 * wait for the gate (reclaim writes back to this device, whose I/O parks
 * while the gate is closed); from then on, lockdep reports any allocation
 * that may enter reclaim (GFP_KERNEL outside a memalloc_noio scope) made
 * while the map is held: a deadlock once every tag is parked.
 */
#ifdef CONFIG_LOCKDEP
static struct lock_class_key hotup_gate_key;
static struct lockdep_map hotup_gate_map =
	STATIC_LOCKDEP_MAP_INIT("hotup_gate_closed", &hotup_gate_key);

void hotup_gate_map_prime(void)
{
	fs_reclaim_acquire(GFP_KERNEL);
	lock_map_acquire(&hotup_gate_map);
	lock_map_release(&hotup_gate_map);
	fs_reclaim_release(GFP_KERNEL);
}

void hotup_gate_map_acquire(void)
{
	lock_map_acquire(&hotup_gate_map);
}

void hotup_gate_map_release(void)
{
	lock_map_release(&hotup_gate_map);
}
#else
void hotup_gate_map_prime(void) {}
void hotup_gate_map_acquire(void) {}
void hotup_gate_map_release(void) {}
#endif
