# description: fault matrix, handed-over requests: an old child whose blob hands over a request under a cookie the parent does not know (inject_export_fault=5), or one due far beyond any device's latency (inject_export_fault=6), is refused: the switch rolls back to it (state=resumed), nothing fails, the next good switch hands over, everything verifies
# timeout: 900
. "$HOTUP_REPO/userspace-tests/guest/lib.sh"
MIB=16
# 5 ms of device latency: under fio a freeze finds requests held (on a
# slow machine it may find none: a forging child then forges a made-up
# entry, so the checks below do not depend on timing).
LAT=latency_us=5000

check "load parent" load_parent capacity_mib=$MIB
check "load child v1 ($LAT)" load_child 1 $LAT
check "prefill the device with verify headers" fio_prefill $MIB
fio_live $MIB
check "fio makes progress" wait_completions 500
# A reader that never pauses (the live workload restarts fio between its
# passes): with it, every freeze finds requests held, so every switch below
# hands some over.
fio --name=held --filename=$DEV --rw=randread --bs=4k --direct=1 --ioengine=libaio \
    --iodepth=16 --time_based --runtime=3600 --output=/dev/null > /dev/null 2>&1 &
HELD=$!

check "v1 -> v2 that forges an unknown cookie" standby_to 2 $LAT inject_export_fault=5
check "v2 active" test "$(current_child)" = hotup_child_v2
check "I/O flows on v2" wait_completions 500

dmesg_mark
check "v1 loaded as the standby" sh -c "rmmod hotup_child_v1 && insmod $MODULES/hotup_child_v1.ko $LAT && echo 'export-schema 1' > $CTL"
check_fails "unknown cookie: the switch fails" sh -c "echo switch > $CTL"
expect_dmesg "unknown cookie: v2 forged an entry" "hotup_child_v2: export: a forged handed-over entry on purpose \(inject_export_fault=5\)"
expect_dmesg "unknown cookie: the parent refused the blob, v2 resumed" \
    "hotup: rollback child=hotup_child_v1 .*step=export reason=inflight-cookie-unknown .*state=resumed active=hotup_child_v2"
check "unknown cookie: v2 is still active" test "$(current_child)" = hotup_child_v2
check "unknown cookie: I/O flows" wait_completions 500
expect_no_dmesg "unknown cookie: no completion went astray" "hotup: error reason=bogus-completion"
check "rmmod the standby" rmmod hotup_child_v1

# Off the forging v2 by a classic upgrade (it drains: nothing handed over,
# nothing forged), then onto a v2 that forges a due time.
check "v2 -> v1 (classic: drained, nothing forged)" upgrade_to 1 $LAT
check "v1 -> v2 that forges a due time" standby_to 2 $LAT inject_export_fault=6
dmesg_mark
check "v1 loaded as the standby again" sh -c "rmmod hotup_child_v1 && insmod $MODULES/hotup_child_v1.ko $LAT && echo 'export-schema 1' > $CTL"
# The prepare step's trial export carries the forged entry too (requests
# are held): the standby's own reader refuses it before anything freezes;
# without the prepare step the parent's check is what stops it.
check_fails "due time: the switch is refused in its prepare step" sh -c "echo switch > $CTL"
expect_dmesg "due time: the standby's probe refused it" "hotup: refuse-switch reason=probe standby=hotup_child_v1 .*state=active"
check_fails "due time: without the prepare step, the switch fails" sh -c "echo 'switch noprepare' > $CTL"
expect_dmesg "due time: v2 forged an entry" "hotup_child_v2: export: a forged handed-over entry on purpose \(inject_export_fault=6\)"
expect_dmesg "due time: the parent refused the blob, v2 resumed" \
    "hotup: rollback child=hotup_child_v1 .*step=export reason=inflight.remaining_ns .*state=resumed active=hotup_child_v2"
check "due time: v2 is still active" test "$(current_child)" = hotup_child_v2
check "due time: I/O flows" wait_completions 500

# Good switches after all that: off the forging v2 classically, then a
# standby switch to a v2 without faults hands over.
check "rmmod the standby" rmmod hotup_child_v1
check "v2 -> v1 (classic)" upgrade_to 1 $LAT
dmesg_mark
check "the next good switch: v1 -> v2" standby_to 2 $LAT
expect_dmesg "the good switch handed over" "hotup: resume gen=[0-9]+ child=hotup_child_v2 .* mode=standby-handover"

check "the steady reader ran to the end" kill $HELD
wait $HELD
fio_live_passed "fault-handover-blob"
check "read-back pass verifies the whole device" fio_readback $MIB
check "no request failed" test "$(ctl failed)" -eq 0
check "rollbacks counted" test "$(ctl rollbacks)" -eq 2
check "rmmod the retired v1" rmmod hotup_child_v1
check "rmmod child" rmmod "$(current_child)"
check "rmmod parent" rmmod hotup_parent
finish
