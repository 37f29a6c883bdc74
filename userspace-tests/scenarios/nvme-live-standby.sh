# description: standby switches between hotup_nvme children on QEMU's NVMe controller, ten at each fio queue depth 1, 16 and 63, under the lost-write-detecting fio: the new child is loaded beside the active one and adopts the drained queues at the operator's switch (no module load in the blackout); a standby that refuses the queues rolls back, the old child takes its queues and interrupts again; QEMU's trace: one start, no stop, reset or queue deletion
# timeout: 900
# nvme: 1
. "$HOTUP_REPO/userspace-tests/guest/lib.sh"
MIB=64
# Standby switches at each fio queue depth of the live writer.
DEPTHS=${HOTUP_NVME_DEPTHS:-1 16 63}
SWITCHES=${HOTUP_NVME_UPGRADES:-10}

check "load the parent with nvme_pci=1" load_parent nvme_pci=1
check "load hotup_nvme_v1 (it brings the controller up)" insmod "$MODULES/hotup_nvme_v1.ko"
expect_dmesg "bring-up" "hotup_nvme_v1: bring-up dev=0 model=QEMU NVMe Ctrl"
check "prefill with verify headers" fio_prefill $MIB
to=2
for d in $DEPTHS; do
    dmesg_mark; depth_mark=$_dmesg_mark
    fio_live $MIB --iodepth=$d
    check "QD$d: fio makes progress" wait_completions 2000
    i=0
    while [ $i -lt $SWITCHES ]; do
        i=$((i + 1))
        from=$(current_child)
        dmesg_mark
        check "QD$d switch $i: fio is writing" wait_writes 200 || break
        check "QD$d switch $i: $from -> hotup_nvme_v$to (standby)" nvme_standby_to $to
        expect_dmesg "QD$d switch $i: registered as the standby" "hotup: standby child=hotup_nvme_v$to version=$to abi=1\\.4 active=$from .* handover=no"
        expect_dmesg "QD$d switch $i: drained, the interrupts left the old child" "hotup: hw-disown child=$from "
        expect_dmesg "QD$d switch $i: the queues handed over" "hotup_nvme_v$to: adopt dev=0 io_queues=2 io_sq_tail=[0-9]+ io_cq_head=[0-9]+"
        expect_dmesg "QD$d switch $i: the new child owns the interrupts" "hotup: hw-own child=hotup_nvme_v$to "
        expect_dmesg "QD$d switch $i: resumed as a standby switch" "hotup: resume gen=[0-9]+ child=hotup_nvme_v$to .* mode=standby-drain"
        expect_dmesg "QD$d switch $i: the old child retired" "hotup: retire child=$from"
        expect_no_dmesg "QD$d switch $i: no stray completion" "stray completion|command cid=[0-9]+ failed"
        diag "$(dmesg_since_mark | grep -E 'hotup: resume' | sed 's/^\[[^]]*\] //')"
        check "QD$d switch $i: fio still running" kill -0 $FIO || break
        check "QD$d switch $i: I/O flows again" wait_completions 2000
        to=$((3 - to))
    done
    _dmesg_mark=$depth_mark
    blackout_summary "QD$d standby"
    fio_live_passed "QD$d live on the controller"
done

fio_live $MIB
check "fio makes progress before the refused switch" wait_completions 2000
# A standby that refuses the queues: the switch rolls back, and the old
# child must get its interrupts back (without them no completion arrives).
from=$(current_child)
dmesg_mark
check_fails "a standby that refuses the state: the switch fails" nvme_standby_to $to inject_adopt_error=1
expect_dmesg "rolled back at the adopt, the old child resumed" "hotup: rollback child=hotup_nvme_v$to version=$to step=adopt .* state=resumed active=$from"
expect_dmesg "the old child owns the interrupts again" "hotup: hw-own child=$from "
check "still the old child" test "$(current_child)" = "$from"
check "after the rollback I/O flows on the old child's queues" wait_completions 2000
check "unload the refused standby" rmmod hotup_nvme_v$to

fio_live_passed "through the rollback"
check "read-back pass verifies the whole range" fio_readback $MIB
check "no request failed" test "$(sysfs failed)" -eq 0
dmesg | grep -E 'hotup: resume gen=[0-9]+ child=hotup_nvme.*mode=standby' | while read -r l; do diag "$(echo "$l" | sed 's/^\[[^]]*\] //')"; done
expect_nvme_trace "QEMU: one controller start" pci_nvme_mmio_start_success 1
expect_nvme_trace "QEMU: no controller stop" pci_nvme_mmio_stopped 0
expect_nvme_trace "QEMU: no reset beyond power-on" pci_nvme_pci_reset 1
expect_nvme_trace "QEMU: no queue deleted" pci_nvme_del_sq 0
expect_nvme_trace "QEMU: no error" 'pci_nvme_err_[a-z_]*' 0

check "unload the retired children" unload_retired
check "rmmod the child" rmmod "$(current_child)"
check "rmmod the parent" rmmod hotup_parent
finish
