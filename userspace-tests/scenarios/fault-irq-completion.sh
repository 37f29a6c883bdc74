# description: fault matrix, completion context: children that complete every request from a hard-IRQ hrtimer (complete_in_irq=1); upgrades under fio, every pass verifies, dmesg stays clean (lockdep on the debug kernel checks the parent's completion path is IRQ-safe)
# timeout: 900
. "$HOTUP_REPO/userspace-tests/guest/lib.sh"
MIB=16

check "load parent" load_parent capacity_mib=$MIB
dmesg_mark
check "load child v1 completing in hard IRQ" load_child 1 complete_in_irq=1
expect_dmesg "v1 says it completes from hard IRQ" 'hotup_child_v1: load version=1 .*completion=hardirq'
check "prefill the device with verify headers" fio_prefill $MIB
fio_live $MIB
check "fio makes progress" wait_completions 1000
to=2; i=0
while [ $i -lt 4 ]; do
    i=$((i + 1))
    check "upgrade $i to v$to (hard-IRQ completion) under fio" upgrade_to $to complete_in_irq=1
    check "upgrade $i: I/O flows again" wait_completions 1000
    to=$((3 - to))
done
fio_live_passed "irq completion"
check "read-back pass verifies the whole device" fio_readback $MIB
check "no request failed" test "$(ctl failed)" -eq 0
check "rmmod child" rmmod "$(current_child)"
check "rmmod parent" rmmod hotup_parent
finish
