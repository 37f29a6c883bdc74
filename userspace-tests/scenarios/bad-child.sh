# description: ABI-major mismatch refused; a corrupted blob refused at adopt with I/O parked, not failed; the old version recovers and fio verifies
# timeout: 400
. "$HOTUP_REPO/userspace-tests/guest/lib.sh"
MIB=64

check "load parent" load_parent capacity_mib=$MIB
check "load child v1" load_child 1
check "prefill the device with verify headers" fio_prefill $MIB
fio_live $MIB
check "fio makes progress" wait_completions 1000

# 1. A child of another ABI major is refused with both versions named.
dmesg_mark
check_fails "insmod of a child claiming ABI 2.x fails" load_child 2 abi_major_override=2
expect_dmesg "refusal names both ABI versions" 'hotup: refuse child=hotup_child_v2 version=2 reason=abi-mismatch child_abi=2\.[0-9]+ parent_abi=1\.[0-9]+'
check "v1 still active after the refusal" test "$(ctl state)" = active

# 2. A corrupted blob is refused at adopt; I/O parks, nothing fails.
check "fio is writing" wait_writes 200
check "clean upgrade to a v1 that will export a corrupted blob" upgrade_to 1 corrupt_export=1
check "writes flow on it" wait_writes 500
dmesg_mark
echo "export-schema 2" > $CTL
check "rmmod the corrupting v1 (it drains and exports)" rmmod hotup_child_v1
expect_dmesg "parent's own check flags the blob" 'hotup: detach .* blob=checksum mismatch'
check_fails "insmod v2: adopt of the corrupted blob fails" load_child 2
expect_dmesg "v2 says why it refused" 'hotup_child_v2: adopt refused: checksum mismatch'
expect_dmesg "rollback logged: parked, blob kept" 'hotup: rollback child=hotup_child_v2 version=2 err=-[0-9]+ state=parked parked=[0-9]+ blob=kept'
check "device is parked" test "$(ctl state)" = parked
wait_for "I/O is waiting in the parking lot (parked > 0)" 20 sh -c "[ \"\$(tr ' ' '\n' < $CTL | sed -n 's/^parked=//p')\" -gt 0 ]"
check "fio is blocked, not failed (still running)" kill -0 $FIO
check "no request failed while parked" test "$(ctl failed)" = 0

# 3. The old version comes back and recovers from the last good state.
dmesg_mark
check "insmod the old version (v1) recovers" load_child 1
expect_dmesg "recovery logged" 'hotup: recover gen=[0-9]+ child=hotup_child_v1 version=1 using=last-good'
expect_dmesg "parked I/O resumed" 'hotup: resume gen=[0-9]+ child=hotup_child_v1 version=1 parked=[1-9][0-9]* '
check "device is active again" test "$(ctl state)" = active
fio_live_passed "after recovery"
check "read-back pass verifies the whole device" fio_readback $MIB
check "no request ever failed" test "$(ctl failed)" = 0

check "rmmod child" rmmod "$(current_child)"
check "rmmod parent" rmmod hotup_parent
finish
