# description: QEMU's NVMe controllers under the kernel's own nvme driver (the peer of the real-NVMe child): both controllers bound through driver_override, fio verifies each namespace, nvme-cli reads QEMU's identity, and QEMU's trace shows each start, the queues created, and a controller reset or unbind as a stop (the witness is seen to catch what hotup's upgrades must never do)
# timeout: 300
# nvme: 2
. "$HOTUP_REPO/userspace-tests/guest/lib.sh"

NVME_KO="$HOTUP_KBUILD/drivers/nvme/host"
check "the guest sees two NVMe controllers (1b36:0010)" \
    test "$(grep -lx 0x1b36 /sys/bus/pci/devices/*/vendor | while read -r f; do d=${f%/vendor}; [ "$(cat $d/device)" = 0x0010 ] && echo "$d"; done | wc -l)" -eq 2
check "no controller was started before the kernel (firmware kept off: -boot strict=on)" \
    test "$(nvme_trace_count pci_nvme_mmio_start_success)" -eq 0
expect_nvme_trace "QEMU: one function-level reset per controller, at power-on" pci_nvme_pci_reset 2
dmesg_mark
check "insmod nvme-core" insmod "$NVME_KO/nvme-core.ko"
check "insmod nvme" insmod "$NVME_KO/nvme.ko"
wait_for "both namespaces appear" 60 test -b /dev/nvme0n1 -a -b /dev/nvme1n1
expect_dmesg "the driver uses MSI-X (CONFIG_PCI_MSI): several I/O queues" 'nvme nvme0: [0-9]+/0/0 default/read/poll queues'
expect_nvme_trace "QEMU: each controller started once" pci_nvme_mmio_start_success 2
_sq=$(nvme_trace_count pci_nvme_create_sq); _cq=$(nvme_trace_count pci_nvme_create_cq)
diag "QEMU: $_sq submission and $_cq completion queues created"
check "QEMU: I/O queues created on both controllers (at least 2 pairs)" test "$_sq" -ge 2 -a "$_cq" -ge 2
expect_nvme_trace "QEMU: no queue deleted" pci_nvme_del_sq 0
expect_nvme_trace "QEMU: no controller stopped" pci_nvme_mmio_stopped 0

for n in 0 1; do
    check "nvme$n: 4096-byte logical blocks (the namespace's LBA format)" test "$(blockdev --getss /dev/nvme${n}n1)" -eq 4096
    check "nvme$n: 256 MiB" test "$(blockdev --getsize64 /dev/nvme${n}n1)" -eq $((256 << 20))
    check "nvme$n: id-ctrl shows QEMU's model and serial hotup-nvme$n" \
        sh -c "nvme id-ctrl /dev/nvme$n | grep -q '^mn *: QEMU NVMe Ctrl' && nvme id-ctrl /dev/nvme$n | grep -q '^sn *: hotup-nvme$n'"
    use_device /dev/nvme${n}n1
    check "nvme$n: fio pass 1 (random order) writes every block once and verifies seed and sequence number" fio_pass 64 1
    check "nvme$n: fio pass 2 (in order) likewise: a dropped write would fail it" fio_pass 64 2
done

# The witness catches a reset: the kernel's own reset path stops the
# controller and starts it again, which a hotup upgrade must never do.
_stops=$(nvme_trace_count pci_nvme_mmio_stopped)
check "reset nvme0 through the kernel driver" sh -c 'echo 1 > /sys/class/nvme/nvme0/reset_controller'
wait_for "QEMU: the reset is seen as a stop" 30 nvme_trace_is pci_nvme_mmio_stopped -gt "$_stops"
wait_for "QEMU: and as a second start of one controller" 30 nvme_trace_is pci_nvme_mmio_start_success -eq 3

# Unbinding moves the device away from the driver, as a user moving it to
# hotup would (driver_override names the driver that may bind next).
_dev=$(basename "$(readlink -f /sys/class/nvme/nvme1/device)")
check "unbind nvme1 ($_dev) from the kernel driver" sh -c "echo $_dev > /sys/bus/pci/drivers/nvme/unbind"
check "nvme1's namespace is gone" test ! -e /dev/nvme1n1
wait_for "QEMU: the unbind deletes nvme1's I/O queues" 30 nvme_trace_is pci_nvme_del_sq -ge 1
check "driver_override=nvme, then bind: the device comes back" \
    sh -c "echo nvme > /sys/bus/pci/devices/$_dev/driver_override && echo $_dev > /sys/bus/pci/drivers/nvme/bind"
wait_for "nvme1's namespace is back" 60 test -b /dev/nvme1n1
use_device /dev/nvme1n1
check "nvme1: the blocks written before the unbind read back and verify" fio_readback 64
check "rmmod nvme nvme-core" rmmod nvme nvme-core
expect_no_dmesg "no I/O error from the driver" 'I/O error|blk_update_request|nvme.*timeout'
finish
