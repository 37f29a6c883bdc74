# The soak (`cargo xtask soak`): $HOTUP_SOAK_UPGRADES consecutive classic
# upgrades (v1->v2->v1...) under the lost-write-detecting fio workload,
# driven inside the guest so an upgrade costs what the kernel costs. Every
# 10th upgrade is rmmod + insmod, the others the one-process swap. Each
# upgrade waits for 200 completed writes after the previous one, so all of
# them happen while fio writes. Progress lines: "soak: N/TOTAL ...".
. "$HOTUP_REPO/userspace-tests/guest/lib.sh"
N=${HOTUP_SOAK_UPGRADES:?set by cargo xtask soak}
MIB=${HOTUP_SOAK_MIB:-64}

check "load parent" load_parent capacity_mib=$MIB
check "load child v1" load_child 1
check "prefill the device with verify headers" fio_prefill $MIB
fio_live $MIB
check "fio makes progress" wait_completions 1000

to=2; i=0; bad=0
while [ $i -lt $N ]; do
    i=$((i + 1))
    if [ $((i % 10)) -eq 0 ]; then swap=commands; else swap=one-process; fi
    if ! kill -0 $FIO 2>/dev/null; then
        fail "upgrade $i: fio is still running" "the writer stopped (a failed pass?): $(tail -n 2 "$HOTUP_OUT/fio-live.log" | tr '\n' ' ')"
        bad=$((bad + 1)); break
    fi
    if ! HOTUP_SWAP=$([ $swap = commands ] && echo commands) upgrade_to $to > /tmp/up.out 2>&1; then
        fail "upgrade $i to v$to ($swap)" "$(tail -n 1 /tmp/up.out)"
        bad=$((bad + 1)); break
    fi
    echo "soak: $i/$N v$to $swap $(dmesg | grep 'hotup: resume' | tail -n 1 | sed 's/.*\(blackout_ns=[0-9]*\).*/\1/')"
    if ! wait_writes 200 120; then
        fail "upgrade $i: writes flow again" "fewer than 200 writes in 120 s"
        bad=$((bad + 1)); break
    fi
    to=$((3 - to))
done
check "all $N upgrades done under load" test $i -eq $N -a $bad -eq 0
fio_live_passed "soak"
check "read-back pass verifies the whole device" fio_readback $MIB
check "no request failed" test "$(ctl failed)" -eq 0
check "the parent counted every upgrade" test "$(ctl upgrades)" -eq $N
check "rmmod child" rmmod "$(current_child)"
check "rmmod parent" rmmod hotup_parent
finish
