# description: hotup_nvme drives QEMU's NVMe controller behind the parent (nvme_pci=1): one bring-up, nvme-cli through /dev/hotup0 on the real controller, then at fio queue depths 1, 16 and 63 ten classic upgrades each v1->v2->v1... under the lost-write-detecting fio; each new child adopts the queues as they are (QEMU's trace: one controller start, no stop, reset or queue deletion until the parent unloads)
# timeout: 900
# nvme: 1
. "$HOTUP_REPO/userspace-tests/guest/lib.sh"
MIB=64
# Upgrades at each fio queue depth of the live writer.
DEPTHS=${HOTUP_NVME_DEPTHS:-1 16 63}
UPGRADES=${HOTUP_NVME_UPGRADES:-10}

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
expect_nvme_trace "QEMU: shadow doorbells configured once, at bring-up (Doorbell Buffer Config)" pci_nvme_dbbuf_config 1
expect_dmesg "the child rings its I/O doorbells through them" "hotup_nvme_v1: bring-up dev=0 .* shadow_doorbells=1"
check "the namespace's block size is the disk's" test "$(cat /sys/block/hotupblk0/queue/logical_block_size)" -eq 4096
check "prefill the device with verify headers" fio_prefill $MIB

# nvme-cli on the controller node reaches QEMU's controller (admin queue
# passthrough): what it reports is the device's, and it stays across the
# upgrades (a controller reset would restore the default threshold).
smart() { nvme_field "$1" smart-log $NVME_CTRL; }
check "id-ctrl: QEMU's model" test "$(nvme_field mn id-ctrl $NVME_CTRL)" = "QEMU NVMe Ctrl"
check "id-ctrl: the drive's serial" test "$(nvme_field sn id-ctrl $NVME_CTRL)" = hotup-nvme0
check "id-ns on the block device: its size in 4 KiB blocks" test "$(nvme_field nsze id-ns $DEV)" = 65536
check "id-ns through the controller node, namespace 1" test "$(nvme_field nsze id-ns $NVME_CTRL -n 1)" = 65536
check "set-feature temperature threshold 0x150 (on the device)" nvme set-feature $NVME_CTRL -f 4 -v 0x150
check "get-feature reads 0x150 back from the device" test "$(nvme_feature 4)" = 336
check_fails "set-feature number of queues is refused (the queues are the child's)" nvme set-feature $NVME_CTRL -f 7 -v 0x10001
check "get-feature number of queues: the 2 pairs granted at bring-up" test "$(nvme_feature 7)" = $((1 << 16 | 1))
check_fails "queue deletion through passthrough is refused" nvme admin-passthru $NVME_CTRL --opcode=0x00 --cdw10=1
dw0=$(smart data_units_written); pc0=$(smart power_cycles)
diag "smart-log before the upgrades: data_units_written=$dw0 power_cycles=$pc0"

to=2
for d in $DEPTHS; do
    dmesg_mark; depth_mark=$_dmesg_mark
    fio_live $MIB --iodepth=$d
    check "QD$d: fio makes progress on the controller" wait_completions 2000
    i=0
    while [ $i -lt $UPGRADES ]; do
        i=$((i + 1))
        from=$(current_child)
        dmesg_mark
        check "QD$d upgrade $i: fio is writing" wait_writes 200 || break
        check "QD$d upgrade $i: $from -> hotup_nvme_v$to under load" nvme_upgrade_to $to
        expect_dmesg "QD$d upgrade $i: drained, then the interrupts left the old child" "hotup: hw-disown child=$from "
        expect_dmesg "QD$d upgrade $i: the queues handed over as they were" "hotup_nvme_v$to: adopt dev=0 io_queues=2 io_sq_tail=[0-9]+ io_cq_head=[0-9]+ io_cq_phase=[01] admin_sq_tail=[0-9]+ from_version=$((3 - to)) shadow_doorbells=1"
        expect_dmesg "QD$d upgrade $i: the new child owns the interrupts" "hotup: hw-own child=hotup_nvme_v$to version=$to "
        expect_dmesg "QD$d upgrade $i: resume logged" "hotup: resume gen=[0-9]+ child=hotup_nvme_v$to .* blackout_ns=[0-9]+"
        expect_no_dmesg "QD$d upgrade $i: no stray completion" "stray completion|command cid=[0-9]+ failed"
        diag "$(dmesg_since_mark | grep -E 'hotup: resume' | sed 's/^\[[^]]*\] //')"
        check "QD$d upgrade $i: fio still running" kill -0 $FIO || break
        check "QD$d upgrade $i: I/O flows again" wait_completions 2000
        check "QD$d upgrade $i: id-ctrl through the new child: the same drive" test "$(nvme_field sn id-ctrl $NVME_CTRL)" = hotup-nvme0
        check "QD$d upgrade $i: the device kept its threshold (0x150)" test "$(nvme_feature 4)" = 336
        check "QD$d upgrade $i: the running child's version in status" test "$(ctl child_version)" = $to
        to=$((3 - to))
    done
    _dmesg_mark=$depth_mark
    blackout_summary "QD$d classic"
    fio_live_passed "QD$d live on the controller"
done
check "read-back pass verifies the whole range" fio_readback $MIB
chunks=$(( $(fio_json "$HOTUP_OUT/fio-readback.json" readback read total_ios) * 16 ))
check "read-back covered every 4 KiB of it" test "$chunks" -eq $((MIB * 256))

# Discard and write zeroes reach the controller (ONCS says it has both).
check "discard 1 MiB at 8 MiB" blkdiscard -o $((8 << 20)) -l $((1 << 20)) $DEV
wait_for "QEMU: the discard deallocated 256 blocks at LBA 2048" 30 nvme_trace_is 'pci_nvme_dsm_deallocate slba 2048 nlb 256' -eq 1
check "write zeroes 1 MiB at 16 MiB" blkdiscard -z -o $((16 << 20)) -l $((1 << 20)) $DEV
check "the zeroed range reads zeroes" sh -c "dd if=$DEV bs=1M skip=16 count=1 iflag=direct status=none | cmp - /dev/zero -n $((1 << 20))"
check "the block before it kept its data (non-zero)" sh -c "! dd if=$DEV bs=4096 skip=$((16 * 256 - 1)) count=1 iflag=direct status=none | cmp -s - /dev/zero -n 4096"

dmesg | grep -E 'hotup: resume gen=[0-9]+ child=hotup_nvme' > /tmp/resumes
check "some upgrade drained commands the controller held (drained > 0)" grep -qE 'drained=[1-9]' /tmp/resumes
while read -r l; do diag "$(echo "$l" | sed 's/^\[[^]]*\] //')"; done < /tmp/resumes
check "no request failed" test "$(sysfs failed)" -eq 0
dw1=$(smart data_units_written)
diag "smart-log after the upgrades: data_units_written=$dw1"
check "smart-log: the device counted the writes made across the upgrades" test "$dw1" -gt "$dw0"
check "smart-log: no power cycle" test "$(smart power_cycles)" = "$pc0"

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
