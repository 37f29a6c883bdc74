# description: standby switches between hotup_nvme children on QEMU's NVMe controller under the lost-write-detecting fio: the new child is loaded beside the active one and adopts the drained queues at the operator's switch (no module load in the blackout); a standby that refuses the queues rolls back, the old child takes its queues and interrupts again; QEMU's trace: one start, no stop, reset or queue deletion
# timeout: 900
# nvme: 1
. "$HOTUP_REPO/userspace-tests/guest/lib.sh"
MIB=64
SWITCHES=6

# nvme_standby_to N [PARAM=VALUE...]: load hotup_nvme_vN as the standby (a
# retired child of that name is unloaded first), then `switch`.
nvme_standby_to() {
    _to=$1; shift
    if grep -q "^hotup_nvme_v$_to " /proc/modules; then rmmod "hotup_nvme_v$_to" || return 1; fi
    echo "export-schema 1" > "$CTL" || return 1
    insmod "$MODULES/hotup_nvme_v$_to.ko" "$@" ${HOTUP_INJECT:-} || return 1
    echo switch > "$CTL"
}

check "load the parent with nvme_pci=1" load_parent nvme_pci=1
check "load hotup_nvme_v1 (it brings the controller up)" insmod "$MODULES/hotup_nvme_v1.ko"
expect_dmesg "bring-up" "hotup_nvme_v1: bring-up dev=0 model=QEMU NVMe Ctrl"
check "prefill with verify headers" fio_prefill $MIB
fio_live $MIB
check "fio makes progress before the first switch" wait_completions 2000

to=2
i=0
while [ $i -lt $SWITCHES ]; do
    i=$((i + 1))
    from=$(current_child)
    dmesg_mark
    check "switch $i: fio is writing" wait_writes 200 || break
    check "switch $i: $from -> hotup_nvme_v$to (standby)" nvme_standby_to $to
    expect_dmesg "switch $i: registered as the standby" "hotup: standby child=hotup_nvme_v$to version=$to abi=1\\.3 active=$from .* handover=no"
    expect_dmesg "switch $i: drained, the interrupts left the old child" "hotup: hw-disown child=$from "
    expect_dmesg "switch $i: the queues handed over" "hotup_nvme_v$to: adopt dev=0 io_queues=2 io_sq_tail=[0-9]+ io_cq_head=[0-9]+"
    expect_dmesg "switch $i: the new child owns the interrupts" "hotup: hw-own child=hotup_nvme_v$to "
    expect_dmesg "switch $i: resumed as a standby switch" "hotup: resume gen=[0-9]+ child=hotup_nvme_v$to .* mode=standby-drain"
    expect_dmesg "switch $i: the old child retired" "hotup: retire child=$from"
    expect_no_dmesg "switch $i: no stray completion" "stray completion|command cid=[0-9]+ failed"
    diag "$(dmesg_since_mark | grep -E 'hotup: resume' | sed 's/^\[[^]]*\] //')"
    check "switch $i: fio still running" kill -0 $FIO || break
    check "switch $i: I/O flows again" wait_completions 2000
    to=$((3 - to))
done

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

fio_live_passed "live on the controller"
check "read-back pass verifies the whole range" fio_readback $MIB
check "no request failed" test "$(sysfs failed)" -eq 0
dmesg | grep -E 'hotup: resume gen=[0-9]+ child=hotup_nvme.*mode=standby' | while read -r l; do diag "$(echo "$l" | sed 's/^\[[^]]*\] //')"; done
expect_nvme_trace "QEMU: one controller start" pci_nvme_mmio_start_success 1
expect_nvme_trace "QEMU: no controller stop" pci_nvme_mmio_stopped 0
expect_nvme_trace "QEMU: no reset beyond power-on" pci_nvme_pci_reset 1
expect_nvme_trace "QEMU: no queue deleted" pci_nvme_del_sq 0
expect_nvme_trace "QEMU: no error" 'pci_nvme_err_[a-z_]*' 0

for m in $(sed -n 's/^\(hotup_nvme_v[0-9]*\) .*/\1/p' /proc/modules); do
    [ "$m" = "$(current_child)" ] || check "unload retired $m" rmmod "$m"
done
check "rmmod the child" rmmod "$(current_child)"
check "rmmod the parent" rmmod hotup_parent
finish
