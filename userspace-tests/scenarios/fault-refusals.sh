# description: fault matrix, refusals under fio: an adopt error in the new child, a truncated blob, an unknown mandatory section and a failed export each roll back with I/O parked, never failed, and recover from the last good state; a failed fresh adopt frees its region; every fio pass verifies
# timeout: 1500
. "$HOTUP_REPO/userspace-tests/guest/lib.sh"
MIB=32

parked_not_failed() {
    check "$1: device parked, no child" test "$(ctl state) $(ctl child)" = "parked -"
    wait_for "$1: I/O waits in the parking lot" 30 sh -c "[ \"\$(tr ' ' '\n' < $CTL | sed -n 's/^parked=//p')\" -gt 0 ]"
    check "$1: fio blocked, not failed (still running)" kill -0 $FIO
    check "$1: no request failed" test "$(ctl failed)" -eq 0
}

check "load parent" load_parent capacity_mib=$MIB

# 0. A fresh start whose adopt fails frees the region it allocated.
dmesg_mark
check_fails "insmod v1 with inject_adopt_error=1 fails" load_child 1 inject_adopt_error=1
expect_dmesg "rollback frees the region of the failed fresh adopt" 'hotup: rollback child=hotup_child_v1 version=1 err=-5 state=parked parked=0 blob=none freed_regions=1'
check "no region left behind" test "$(ctl regions)" -eq 0
check "load child v1" load_child 1
check "one region: the disk" test "$(ctl regions)" -eq 1

check "prefill the device with verify headers" fio_prefill $MIB
fio_live $MIB
check "fio makes progress" wait_completions 1000

# 1. The new child's adopt fails: rollback, parked; a good v2 adopts the kept blob.
dmesg_mark
check_fails "upgrade to v2 with inject_adopt_error=1 fails" upgrade_to 2 inject_adopt_error=1
expect_dmesg "v2 failed its adopt" 'hotup_child_v2: adopt: failing on purpose'
expect_dmesg "rollback: parked, blob kept" 'hotup: rollback child=hotup_child_v2 version=2 err=-5 state=parked parked=[0-9]+ blob=kept freed_regions=0'
parked_not_failed "adopt error"
check "load v2 (no fault): adopts the kept blob" load_child 2
expect_dmesg "kept blob adopted" 'hotup: adopt gen=[0-9]+ child=hotup_child_v2 version=2 from=hotup_child_v1 from_version=1'
expect_dmesg "parked I/O released" 'hotup: resume gen=[0-9]+ child=hotup_child_v2 version=2 parked=[1-9]'
check "I/O flows" wait_completions 500

# 2. A truncated blob: the parent's check flags it, v2 refuses it, then the last good state.
check "upgrade to a v1 that will export a truncated blob" upgrade_to 1 inject_export_fault=2
check "I/O flows" wait_completions 500
dmesg_mark
echo "export-schema 2" > $CTL
check "rmmod the truncating v1" rmmod hotup_child_v1
expect_dmesg "parent's check flags the truncated blob" 'hotup: detach .* blob=(truncated blob|length mismatch)'
check_fails "v2 refuses the truncated blob" load_child 2
expect_dmesg "rollback logged" 'hotup: rollback child=hotup_child_v2 version=2 .*state=parked .*blob=kept'
parked_not_failed "truncated blob"
check "v2 again: recovers from the last good state" load_child 2
expect_dmesg "recovery logged" 'hotup: recover gen=[0-9]+ child=hotup_child_v2 version=2 using=last-good reason=corrupt-stash'
expect_dmesg "parked I/O released" 'hotup: resume gen=[0-9]+ child=hotup_child_v2 version=2 parked=[1-9]'
check "I/O flows" wait_completions 500

# 3. An unknown mandatory section: well formed (checksum holds), refused by
# every reader, its producer included; then the last good state.
check "upgrade to a v1 that will add an unknown mandatory section" upgrade_to 1 inject_export_fault=3
check "I/O flows" wait_completions 500
dmesg_mark
check "rmmod that v1" rmmod hotup_child_v1
expect_dmesg "the blob passes the parent's own check" 'hotup: detach .* blob=ok'
check_fails "v1 (its producer's version) refuses it" load_child 1
expect_dmesg "v1 names the unknown mandatory section" 'hotup_child_v1: adopt refused: .*(unknown|mandatory)'
parked_not_failed "unknown mandatory section"
check "v2: recovers from the last good state" load_child 2
expect_dmesg "recovery logged" 'hotup: recover gen=[0-9]+ child=hotup_child_v2 version=2 using=last-good reason=refused-by-producer'
check "I/O flows" wait_completions 500

# 4. A failed export: no blob at all; the next child adopts the last good state.
check "upgrade to a v1 whose export will fail" upgrade_to 1 inject_export_fault=1
check "I/O flows" wait_completions 500
dmesg_mark
check "upgrade to v2 across the failed export" upgrade_to 2
expect_dmesg "detach says the export failed and what happens" 'hotup: detach .* export=failed err=-5 fallback=last-good'
expect_dmesg "v2 recovers from the last good state" 'hotup: recover gen=[0-9]+ child=hotup_child_v2 version=2 using=last-good reason=export-failed'
check "I/O flows" wait_completions 500

fio_live_passed "refusals"
check "read-back pass verifies the whole device" fio_readback $MIB
check "no request ever failed" test "$(ctl failed)" -eq 0
check "still one region: nothing leaked, nothing started fresh" test "$(ctl regions)" -eq 1
check "rmmod child" rmmod "$(current_child)"
check "rmmod parent" rmmod hotup_parent
finish
