# description: the parent owns QEMU's NVMe controllers (nvme_pci=1, issue 20's first step): it binds both, enables them on the bus, maps BAR0, allocates MSI-X vectors and DMA memory, never starts a controller (QEMU's trace), keeps the RAM device working, unbinds at unload; driver_override moves a controller to the kernel's nvme driver and back
# timeout: 300
# nvme: 2
. "$HOTUP_REPO/userspace-tests/guest/lib.sh"

NVME_KO="$HOTUP_KBUILD/drivers/nvme/host"
BDFS=$(for d in /sys/bus/pci/devices/*; do [ "$(cat $d/vendor):$(cat $d/device)" = 0x1b36:0x0010 ] && basename $d; done)
set -- $BDFS; A=$1; B=$2
check "two NVMe controllers ($A, $B)" test -n "$A" -a -n "$B"
# bound_to BDF: the name of the driver bound to BDF, empty if none.
bound_to() { [ -e "/sys/bus/pci/devices/$1/driver" ] && basename "$(readlink -f "/sys/bus/pci/devices/$1/driver")"; }

dmesg_mark
check "insmod hotup_parent (without nvme_pci)" load_parent
expect_no_dmesg "without nvme_pci the parent binds nothing" 'hotup: pci-bound'
check "$A stays unbound" test -z "$(bound_to $A)"
check "rmmod hotup_parent" rmmod hotup_parent

dmesg_mark
check "insmod hotup_parent nvme_pci=1" load_parent nvme_pci=1
for d in $A $B; do
    expect_dmesg "$d: bound, vectors and DMA arena allocated, controller left disabled" "hotup: pci-bound dev=$d vendor=0x1b36 device=0x0010 vs=1\\.4 max_queue_entries=[0-9]+ dstrd=0 cc=0x0 csts=0x0 vectors=3 arena_kib=[0-9]+"
    check "$d: its driver is hotup_parent" test "$(bound_to $d)" = hotup_parent
    check "$d: memory space and bus mastering on (PCI command bits 1 and 2)" sh -c "test \$(( \$(od -An -tu2 -j4 -N2 /sys/bus/pci/devices/$d/config) & 6 )) -eq 6"
    check "$d: MSI-X vectors allocated (msi_irqs)" test "$(ls /sys/bus/pci/devices/$d/msi_irqs | wc -l)" -eq 3
done
check "a handler per vector registered by the parent (/proc/interrupts: 6 hotup_nvme, 3 per controller)" test "$(grep -c hotup_nvme /proc/interrupts)" -eq 6
expect_nvme_trace "QEMU: no controller started (the parent only reads registers)" pci_nvme_mmio_start_success 0
check "the RAM child still drives /dev/hotupblk0" load_child 1
check "fio pass on the RAM device with the controllers bound" fio_pass 64 1
check "rmmod hotup_child_v1" rmmod hotup_child_v1
dmesg_mark
check "rmmod hotup_parent unbinds both" rmmod hotup_parent
for d in $A $B; do
    expect_dmesg "$d: unbound, still disabled" "hotup: pci-unbound dev=$d disabled=0 vectors=3"
    check "$d: no driver" test -z "$(bound_to $d)"
done

# Move $B to the kernel's own driver and back (README: the device between
# hotup and the stock driver).
check "driver_override=nvme on $B" sh -c "echo nvme > /sys/bus/pci/devices/$B/driver_override"
check "driver_override=hotup_parent on $A" sh -c "echo hotup_parent > /sys/bus/pci/devices/$A/driver_override"
check "insmod nvme-core nvme" sh -c "insmod $NVME_KO/nvme-core.ko && insmod $NVME_KO/nvme.ko"
wait_for "the kernel driver has $B (one namespace)" 60 test -b /dev/nvme0n1
check "$A is not the kernel driver's (driver_override)" test -z "$(bound_to $A)"
use_device /dev/nvme0n1
check "fio pass on $B under the kernel driver" fio_pass 64 2
use_device /dev/hotupblk0
dmesg_mark
check "insmod hotup_parent nvme_pci=1 takes $A only" load_parent nvme_pci=1
expect_dmesg "$A: bound by hotup" "hotup: pci-bound dev=$A "
expect_no_dmesg "$B: left to the kernel driver" "hotup: pci-bound dev=$B "
check "rmmod hotup_parent" rmmod hotup_parent
check "rmmod nvme nvme-core" rmmod nvme nvme-core
expect_nvme_trace "QEMU: one start in all, the kernel driver's" pci_nvme_mmio_start_success 1
finish
