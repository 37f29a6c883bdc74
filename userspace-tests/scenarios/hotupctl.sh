# description: hotupctl, the operator's tool, in the guest: its error cases (no parent, not root, not a module, another kernel, another ABI major, switch without a standby) say what to do; upgrades by it in standby (default), classic and same-name fallback modes under fio; status --json
# timeout: 600
. "$HOTUP_REPO/userspace-tests/guest/lib.sh"
H="$MODULES/hotupctl"
MIB=32

# fails_with DESC TEXT CMD...: CMD fails and its error output contains TEXT.
fails_with() {
    _d=$1; _t=$2; shift 2
    if _o=$("$@" 2>&1); then fail "$_d" "succeeded: $_o"; return 1; fi
    diag "$_o"
    if echo "$_o" | grep -qF -- "$_t"; then pass "$_d"; else fail "$_d" "no '$_t' in: $_o"; fi
}

fails_with "no parent loaded: says to load it" "insmod hotup_parent.ko" "$H" status
check "load parent" load_parent capacity_mib=$MIB
check "load child v1" load_child 1
check "status works" "$H" status
check "status --json is JSON naming the active child" sh -c "'$H' status --json | python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(0 if d[\"child\"]==\"hotup_child_v1\" else 1)'"
fails_with "not root: says so" "needs root" setpriv --reuid=65534 --regid=65534 --clear-groups "$H" switch
fails_with "a file that is not a module" "not an ELF file" "$H" upgrade /etc/hostname
sed 's/vermagic=[0-9][^ ]*/vermagic=0.0.0-other/' "$MODULES/hotup_child_v2.ko" > /tmp/other-kernel.ko
fails_with "a module of another kernel" "was built for kernel 0.0.0-other" "$H" upgrade /tmp/other-kernel.ko
fails_with "a child of another ABI major: the parent's reason" "reason=abi-mismatch" "$H" upgrade "$MODULES/hotup_child_v2.ko" --param abi_major_override=2
fails_with "switch with no standby" "no standby child is loaded" "$H" switch
fails_with "abort with no switch running" "nothing to abort" "$H" abort
fails_with "a bad --param" "is not KEY=VALUE" "$H" upgrade "$MODULES/hotup_child_v2.ko" --param =1
check "v1 still active after every refusal" test "$(current_child)" = hotup_child_v1

check "prefill" fio_prefill $MIB
fio_live $MIB
check "fio makes progress" wait_completions 1000

check "fio is writing" wait_writes 200
check "hotupctl upgrade v2 (standby by default)" sh -c "'$H' upgrade '$MODULES/hotup_child_v2.ko' > /tmp/u1.txt"
diag "$(cat /tmp/u1.txt)"
check "it switched in standby mode and unloaded the retired v1" sh -c "grep -q 'hotup_child_v1 -> hotup_child_v2: standby-handover ok' /tmp/u1.txt && grep -q 'retired hotup_child_v1: unloaded' /tmp/u1.txt"
check "v1 is gone from /proc/modules" sh -c "! grep -q '^hotup_child_v1 ' /proc/modules"

check "fio is writing" wait_writes 200
check "hotupctl upgrade v1 --schema 1 --json" sh -c "'$H' upgrade '$MODULES/hotup_child_v1.ko' --schema 1 --json > /tmp/u2.json"
check "its JSON says ok, standby, with a blackout" python3 -c 'import json,sys
d=json.load(open("/tmp/u2.json"))
sys.exit(0 if d["ok"] and d["mode"].startswith("standby") and d["blackout_ns"]>0 and d["to"]=="hotup_child_v1" else 1)'

check "fio is writing" wait_writes 200
check "hotupctl upgrade v2 --mode classic" sh -c "'$H' upgrade '$MODULES/hotup_child_v2.ko' --mode classic > /tmp/u3.txt"
diag "$(cat /tmp/u3.txt)"
check "it was a classic upgrade" grep -q 'hotup_child_v1 -> hotup_child_v2: classic ok' /tmp/u3.txt

check "fio is writing" wait_writes 200
check "hotupctl upgrade v2 again: same module name, classic fallback" sh -c "'$H' upgrade '$MODULES/hotup_child_v2.ko' > /tmp/u4.txt"
diag "$(cat /tmp/u4.txt)"
check "it said why it was not standby" grep -q 'not standby: hotup_child_v2 is already loaded as the active child' /tmp/u4.txt
fails_with "--mode standby with the same name is refused with the reason" "cannot be loaded twice" "$H" upgrade "$MODULES/hotup_child_v2.ko" --mode standby

fio_live_passed "hotupctl"
check "read-back pass verifies the whole device" fio_readback $MIB
check "no request failed" test "$(ctl failed)" -eq 0
check "rmmod child" rmmod "$(current_child)"
check "rmmod parent" rmmod hotup_parent
finish
