# description: syscalls park across upgrades: three processes each hold /dev/hotup0 open with a per-file value set and loop admin commands through it (thousands of calls), and nvme-cli loops smart-log, while the children are swapped 6 times (standby and classic; each call stays 2 ms in the child, so switches find calls to drain); no call fails (no EINTR, no EAGAIN), every per-file value reads back, calls reach both versions, resume lines show parked and drained calls; a file closed with no child loaded is forgotten by the next; poll wakes when a child becomes active; a parked call survives signals (restarted) and a parked nvme killed by SIGKILL ends at once and leaves nothing behind
# timeout: 900
. "$HOTUP_REPO/userspace-tests/guest/lib.sh"
MIB=64
UPGRADES=6
# Each call stays 2 ms in the child (a slow admin command), so a switch
# usually finds one inside and drains it.
DELAY=inject_call_delay_us=2000
IO="$MODULES/hotup-ioctl"
STOP="$HOTUP_OUT/calls.stop"

check "load parent" load_parent capacity_mib=$MIB
check "load child v1" load_child 1 $DELAY
rm -f "$STOP" "$HOTUP_OUT"/hold*.txt "$HOTUP_OUT"/hold*.progress "$HOTUP_OUT/nvme-loop.txt"

# Three holders: each opens the controller node once, sets a per-file
# value on it (kept by the child, carried in the blob), and sends Identify
# Controller through that file until told to stop, reading the value back
# after every call.
HOLDERS=""
for h in 0 1 2; do
    "$IO" hold $NVME_CTRL --until "$STOP" --min-calls 500 --progress "$HOTUP_OUT/hold$h.progress" \
        --tag $((1000 + h)) > "$HOTUP_OUT/hold$h.txt" 2>&1 &
    HOLDERS="$HOLDERS $!"
done
# The real client in a loop (each nvme run takes seconds under TCG).
(
    n=0; bad=0
    while [ ! -e "$STOP" ]; do
        nvme smart-log $NVME_CTRL -o json > /dev/null 2>> "$HOTUP_OUT/nvme-loop.err" || bad=$((bad + 1))
        n=$((n + 1))
    done
    echo "runs=$n failed=$bad" > "$HOTUP_OUT/nvme-loop.txt"
) &
NVME_LOOP=$!

progress() { cat "$HOTUP_OUT/hold$1.progress" 2>/dev/null || echo 0; }
# calls_flow N: every holder has made N more calls than when asked.
calls_flow() {
    _n=$1
    set -- $(progress 0) $(progress 1) $(progress 2)
    _a=$(($1 + _n)); _b=$(($2 + _n)); _c=$(($3 + _n))
    wait_for "calls flow ($_n more through each held file)" 120 \
        sh -c "[ \$(cat $HOTUP_OUT/hold0.progress) -ge $_a ] && [ \$(cat $HOTUP_OUT/hold1.progress) -ge $_b ] && [ \$(cat $HOTUP_OUT/hold2.progress) -ge $_c ]"
}
calls_flow 100

to=2
i=0
dmesg_mark
while [ $i -lt $UPGRADES ]; do
    i=$((i + 1))
    if [ $((i % 2)) -eq 1 ]; then
        check "upgrade $i: standby switch to v$to under calls" standby_to $to $DELAY || break
    else
        check "upgrade $i: unload the retired child" unload_retired
        check "upgrade $i: classic upgrade to v$to under calls" upgrade_to $to $DELAY || break
    fi
    check "upgrade $i: v$to active" test "$(current_child)" = hotup_child_v$to
    calls_flow 100
    to=$((3 - to))
done
dmesg_since_mark | grep -E 'hotup: resume ' > /tmp/resumes
while read -r l; do diag "$(echo "$l" | sed 's/^\[[^]]*\] //' | grep -oE 'gen=[0-9]+ child=[^ ]+|mode=[^ ]+|parked_calls=[0-9]+ drained_calls=[0-9]+' | tr '\n' ' ')"; done < /tmp/resumes
check "every upgrade logged a resume line with call counts" \
    test "$(grep -cE 'parked_calls=[0-9]+ drained_calls=[0-9]+' /tmp/resumes)" -eq $UPGRADES
check "some upgrade parked calls (parked_calls > 0)" grep -qE 'parked_calls=[1-9]' /tmp/resumes
check "some upgrade drained calls (drained_calls > 0)" grep -qE 'drained_calls=[1-9]' /tmp/resumes
check "every export carried the three holders' per-file values" \
    test "$(dmesg_since_mark | grep -cE 'hotup_child_v[12]: export version=[0-9]+ .* held=[0-9]+ files=3')" -ge $UPGRADES
check "sysfs counts parked calls" test "$(ctl parked_calls_total)" -gt 0

touch "$STOP"
n=0
for pid in $HOLDERS; do
    wait $pid; rc=$?
    check "holder $n: every call through its one open file succeeded" test $rc -eq 0
    diag "holder $n: $(cat "$HOTUP_OUT/hold$n.txt")"
    check "holder $n: no EINTR, no EAGAIN, no error, its per-file value intact" grep -q 'failures=0 .*errors=-' "$HOTUP_OUT/hold$n.txt"
    check "holder $n: its calls reached both versions" grep -qE 'versions=v[12],v[12]' "$HOTUP_OUT/hold$n.txt"
    n=$((n + 1))
done
wait $NVME_LOOP
diag "nvme loop: $(cat "$HOTUP_OUT/nvme-loop.txt")"
check "nvme smart-log loop: no run failed" grep -qE 'runs=[1-9][0-9]* failed=0' "$HOTUP_OUT/nvme-loop.txt"
total=0
for h in 0 1 2; do total=$((total + $(sed -n 's/^calls=\([0-9]*\).*/\1/p' "$HOTUP_OUT/hold$h.txt"))); done
diag "calls through held files: $total"
check "thousands of calls" test $total -ge 2000

# A file closed while no child is loaded: its value went into the blob,
# and the next child, which adopts it, is told of the close.
"$IO" tag $NVME_CTRL --value 77 --until "$HOTUP_OUT/tag.stop" > "$HOTUP_OUT/tag.txt" 2>&1 &
T=$!
wait_for "a file is open with a per-file value" 60 grep -q 'set value=77' "$HOTUP_OUT/tag.txt"
check "unload the retired child" unload_retired
dmesg_mark
check "unload the child with the file open" rmmod "$(current_child)"
expect_dmesg "its export carries the file's value" 'hotup_child_v[12]: export version=[0-9]+ .* files=1'
touch "$HOTUP_OUT/tag.stop"
wait $T; rc=$?
check "the file is closed while no child is loaded" test $rc -eq 0
check "load child v1" load_child 1
expect_dmesg "v1 adopts the file's value" 'hotup_child_v1: adopt version=1 .* files=1'
check "standby switch to v2" standby_to 2
expect_dmesg "v1 was told of the close: its export has no file" 'hotup_child_v1: export version=1 .* files=0'
check "poll: ready while a child is active" sh -c "'$IO' poll $NVME_CTRL --timeout-ms 10000 | grep -q ready"

# pruned_in_v2 FROM: v2 (just loaded) adopted one stale file from FROM, the
# parent told it of the close, and v2's next export (a switch to v1, and
# back) no longer has it.
pruned_in_v2() {
    expect_dmesg "v2 adopted the stale file from $1" 'hotup_child_v2: adopt version=2 .* files=1'
    expect_dmesg "the parent told v2 the file is closed" 'hotup: files-pruned gen=[0-9]+ child=hotup_child_v2 count=1'
    dmesg_mark
    check "standby switch to v1" standby_to 1
    expect_dmesg "v2 forgot the closed file: its export has none" 'hotup_child_v2: export version=2 .* files=0'
    check "standby switch back to v2" standby_to 2
}

# A blob that names a file closed since it was written: the last good
# state, adopted after a failed export. The parent tells the adopting child
# of the close (`files-pruned`), so closed files never pile up in a child.
check "unload the retired child" unload_retired
"$IO" tag $NVME_CTRL --value 78 --until "$HOTUP_OUT/tag2.stop" > "$HOTUP_OUT/tag2.txt" 2>&1 &
T=$!
wait_for "a second file is open with a per-file value" 60 grep -q 'set value=78' "$HOTUP_OUT/tag2.txt"
dmesg_mark
check "classic upgrade to a v1 whose exports fail" upgrade_to 1 inject_export_fault=1
expect_dmesg "v1 adopted the file's value (this blob is now the last good state)" 'hotup_child_v1: adopt version=1 .* files=1'
touch "$HOTUP_OUT/tag2.stop"
wait $T; rc=$?
check "the file is closed (v1 forgets it)" test $rc -eq 0
dmesg_mark
check "unload v1: its export fails" rmmod hotup_child_v1
expect_dmesg "the parent falls back to the last good state" 'hotup: detach .* export=failed .* fallback=last-good'
check "load child v2: it adopts the last good state" load_child 2
pruned_in_v2 "the last good state"

# An ABI 1.1 child ignores closes (it has no `release`): a file closed under
# it stays in its blob; the next child adopts that blob from the stash and
# the parent tells it of the close.
check "unload the retired child" unload_retired
"$IO" tag $NVME_CTRL --value 79 --until "$HOTUP_OUT/tag3.stop" > "$HOTUP_OUT/tag3.txt" 2>&1 &
T=$!
wait_for "a third file is open with a per-file value" 60 grep -q 'set value=79' "$HOTUP_OUT/tag3.txt"
check "classic upgrade to a v1 registering as ABI 1.1 (no release)" upgrade_to 1 abi_minor_override=1
touch "$HOTUP_OUT/tag3.stop"
wait $T; rc=$?
check "the file is closed under the ABI 1.1 child" test $rc -eq 0
dmesg_mark
check "classic upgrade to v2: it adopts the ABI 1.1 child's blob" upgrade_to 2
pruned_in_v2 "the stash"

# A parked call and signals: an ordinary signal (a handler, no
# SA_RESTART) restarts it transparently, SIGSTOP/SIGCONT too; it
# completes in the next child.
check "unload the retired child" unload_retired
check "unload the child: calls park" rmmod "$(current_child)"
"$IO" parked $NVME_CTRL > "$HOTUP_OUT/parked.txt" 2>&1 &
P=$!
wait_for "the call is parked" 60 sh -c "[ \$(cat /sys/block/hotupblk0/hotup/parked_calls) -ge 1 ]"
for sig in USR1 USR1 STOP; do
    t0=$(ctl parked_calls_total)
    check "SIG$sig to the parked caller" kill -$sig $P
    [ $sig = STOP ] && check "SIGCONT" kill -CONT $P
    wait_for "after SIG$sig the call restarted and parked again" 60 \
        sh -c "[ \$(tr ' ' '\n' < $CTL | sed -n 's/^parked_calls_total=//p') -gt $t0 ] && [ \$(cat /sys/block/hotupblk0/hotup/parked_calls) -ge 1 ]"
done
# v2 exported its own schema: v2 adopts it.
check "load child v2: the parked call goes on in it" load_child 2
wait $P; rc=$?
check "the parked call succeeded, not EINTR" test $rc -eq 0
diag "parked call: $(tr '\n' ' ' < "$HOTUP_OUT/parked.txt")"
check "it saw both signals and ran on v2" grep -qE 'result=ok fr=v2 signals=2' "$HOTUP_OUT/parked.txt"

# SIGKILL: a parked nvme dies at once and leaves nothing parked or open.
check "unload the child again" rmmod hotup_child_v2
nvme id-ctrl $NVME_CTRL > /dev/null 2>&1 &
K=$!
wait_for "nvme id-ctrl is parked" 60 sh -c "[ \$(cat /sys/block/hotupblk0/hotup/parked_calls) -ge 1 ]"
check "SIGKILL to it" kill -KILL $K
wait_for "it ends promptly" 10 sh -c "! kill -0 $K"
wait $K; rc=$?
check "it died of SIGKILL (status 137)" test $rc -eq 137
check "nothing is parked any more" test "$(sysfs parked_calls)" -eq 0
check "poll: not ready while no child is loaded" sh -c "'$IO' poll $NVME_CTRL --timeout-ms 300 | grep -q timeout"
"$IO" poll $NVME_CTRL --timeout-ms 120000 > "$HOTUP_OUT/poll.txt" 2>&1 &
PL=$!
wait_for "a poller waits" 60 grep -q polling "$HOTUP_OUT/poll.txt"
check "a child again: calls work" load_child 2
wait $PL
diag "poller: $(tr '\n' ' ' < "$HOTUP_OUT/poll.txt")"
check "the poller woke when the child became active" grep -q 'ready revents' "$HOTUP_OUT/poll.txt"
check "nvme id-ctrl on v2" test "$(nvme_field fr id-ctrl $NVME_CTRL)" = v2
check "rmmod child" rmmod hotup_child_v2
check "rmmod parent: no file of the killed caller is left open" rmmod hotup_parent
finish
