# description: hotup_nvme drives QEMU's NVMe controller behind the parent (nvme_pci=1): one bring-up, then classic upgrades v1->v2->v1... under the lost-write-detecting fio; each new child adopts the queues as they are (QEMU's trace: one controller start, no stop, reset or queue deletion until the parent unloads)
# timeout: 900
# nvme: 1
. "$HOTUP_REPO/userspace-tests/guest/lib.sh"
MIB=64
UPGRADES=4

# nvme_upgrade_to N: the classic upgrade to hotup_nvme_vN, by hand (rmmod,
# insmod): the old child drains and exports its queues, the new one adopts.
nvme_upgrade_to() {
    echo "export-schema 1" > "$CTL" || return 1
    rmmod "$(current_child)" || return 1
    insmod "$MODULES/hotup_nvme_v$1.ko" ${HOTUP_INJECT:-}
}

check "load the parent with nvme_pci=1" load_parent nvme_pci=1
expect_dmesg "the parent bound the controller" "hotup: pci-bound dev=[0-9a-f:.]+ vendor=0x1b36 device=0x0010 .* vectors=3 "
dmesg_mark
check "load hotup_nvme_v1 (fresh: it brings the controller up)" insmod "$MODULES/hotup_nvme_v1.ko"
expect_dmesg "the parent enabled the controller (the only CC write)" "hotup: hw-enable dev=0 cc=0x460000 err=0"
expect_dmesg "bring-up: identify through the admin queue" "hotup_nvme_v1: bring-up dev=0 model=QEMU NVMe Ctrl serial=hotup-nvme0 nsze=65536 lba_bytes=4096 vectors=3 io_queues=2 io_queue_depth=256"
expect_dmesg "the child owns the interrupts" "hotup: hw-own child=hotup_nvme_v1 version=1 replayed=[0-9]+"
expect_nvme_trace "QEMU: the controller started once" pci_nvme_mmio_start_success 1
expect_nvme_trace "QEMU: an I/O completion queue per vCPU created" pci_nvme_create_cq 2
expect_nvme_trace "QEMU: an I/O submission queue per vCPU created" pci_nvme_create_sq 2
check "the namespace's block size is the disk's" test "$(cat /sys/block/hotupblk0/queue/logical_block_size)" -eq 4096
check "prefill the device with verify headers" fio_prefill $MIB

fio_live $MIB
check "fio makes progress on the controller before the first upgrade" wait_completions 2000

to=2
i=0
while [ $i -lt $UPGRADES ]; do
    i=$((i + 1))
    from=$(current_child)
    dmesg_mark
    check "upgrade $i: fio is writing" wait_writes 200 || break
    check "upgrade $i: $from -> hotup_nvme_v$to under load" nvme_upgrade_to $to
    expect_dmesg "upgrade $i: drained, then the interrupts left the old child" "hotup: hw-disown child=$from "
    expect_dmesg "upgrade $i: the queues handed over as they were" "hotup_nvme_v$to: adopt dev=0 io_queues=2 io_sq_tail=[0-9]+ io_cq_head=[0-9]+ io_cq_phase=[01] admin_sq_tail=[0-9]+ from_version=$((3 - to))"
    expect_dmesg "upgrade $i: the new child owns the interrupts" "hotup: hw-own child=hotup_nvme_v$to version=$to "
    expect_dmesg "upgrade $i: resume logged" "hotup: resume gen=[0-9]+ child=hotup_nvme_v$to .* blackout_ns=[0-9]+"
    expect_no_dmesg "upgrade $i: no stray completion" "stray completion|command cid=[0-9]+ failed"
    diag "$(dmesg_since_mark | grep -E 'hotup: resume' | sed 's/^\[[^]]*\] //')"
    check "upgrade $i: fio still running" kill -0 $FIO || break
    check "upgrade $i: I/O flows again" wait_completions 2000
    to=$((3 - to))
done

fio_live_passed "live on the controller"
check "read-back pass verifies the whole range" fio_readback $MIB
chunks=$(( $(fio_json "$HOTUP_OUT/fio-readback.json" readback read total_ios) * 16 ))
check "read-back covered every 4 KiB of it" test "$chunks" -eq $((MIB * 256))

dmesg | grep -E 'hotup: resume gen=[0-9]+ child=hotup_nvme' > /tmp/resumes
check "some upgrade drained commands the controller held (drained > 0)" grep -qE 'drained=[1-9]' /tmp/resumes
while read -r l; do diag "$(echo "$l" | sed 's/^\[[^]]*\] //')"; done < /tmp/resumes
check "no request failed" test "$(sysfs failed)" -eq 0

# The witness: the controller was never reset across the upgrades.
expect_nvme_trace "QEMU: still one controller start" pci_nvme_mmio_start_success 1
expect_nvme_trace "QEMU: no controller stop" pci_nvme_mmio_stopped 0
expect_nvme_trace "QEMU: no reset beyond power-on" pci_nvme_pci_reset 1
expect_nvme_trace "QEMU: no queue deleted" pci_nvme_del_sq 0
expect_nvme_trace "QEMU: no error" 'pci_nvme_err_[a-z_]*' 0

check "rmmod the child" rmmod "$(current_child)"
dmesg_mark
check "rmmod the parent (it disables the controller)" rmmod hotup_parent
expect_dmesg "unbound and disabled" "hotup: pci-unbound dev=[0-9a-f:.]+ disabled=0 vectors=3"
wait_for "QEMU: the parent's unload stops the controller" 30 nvme_trace_is pci_nvme_mmio_stopped -eq 1
finish
