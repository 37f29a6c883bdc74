# description: hotupctl, the operator's tool, in the guest: downgrades without --schema (classic: from the module file's hotup_schema; standby: the parent negotiates); doctor on this kernel (everything in place; a build tree without the Rust metadata and a foreign rustc named as such); its error cases (no parent, not root, not a module, another kernel, another ABI major, switch without a standby) say what to do; upgrades by it in standby (default), classic and same-name fallback modes under fio; status --json
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

# doctor KDIR [ARGS...]: hotupctl doctor against the build tree KDIR, with
# the rustc that built the modules first on the PATH (as on a real host).
doctor() { _k=$1; shift; PATH="$(dirname "$HOTUP_RUSTC"):$PATH" "$H" doctor --kdir "$_k" "$@"; }
# doctor_says KDIR REGEX: the doctor's report on KDIR has a line matching REGEX.
doctor_says() { doctor "$1" | grep -qE -- "$2"; }
# doctor_json_bare: on the bare tree, the JSON says not ok, the metadata
# check failed and the Rust check passed.
doctor_json_bare() {
    doctor /tmp/bare --json | python3 -c 'import json,sys
d=json.load(sys.stdin); c={x["name"]: x["verdict"] for x in d["checks"]}
sys.exit(0 if d["ok"] is False and c["rust-metadata"] == "fail" and c["rust"] == "ok" else 1)'
}
check "doctor on this kernel, its build tree and rustc: everything in place" doctor "$HOTUP_KBUILD"
doctor "$HOTUP_KBUILD" | while read -r l; do diag "doctor: $l"; done
check "doctor: the parent is not loaded yet (a note, not a failure)" doctor_says "$HOTUP_KBUILD" "note parent +hotup_parent is not loaded"
# A build tree of this kernel without its Rust metadata (as Debian's
# headers are): the doctor names the missing pieces and fails.
mkdir -p /tmp/bare/include/config
cp "$HOTUP_KBUILD/.config" /tmp/bare/.config
cp "$HOTUP_KBUILD/include/config/kernel.release" /tmp/bare/include/config/
fails_with "doctor: a build tree without rust/ and target.json fails" "hotup cannot work on this kernel yet" doctor /tmp/bare
check "doctor: it names both missing pieces" doctor_says /tmp/bare "FAIL rust-metadata +rust/libkernel.rmeta and scripts/target.json missing in /tmp/bare"
check "doctor --json: ok false, the metadata check failed, Rust is there" doctor_json_bare
mkdir -p /tmp/fakebin
printf '#!/bin/sh\necho "rustc 0.0.1 (fake)"\n' > /tmp/fakebin/rustc
chmod +x /tmp/fakebin/rustc
fails_with "doctor: a rustc other than the kernel's is named" "rustc 0.0.1 (fake) on the PATH; the kernel was built with" env PATH="/tmp/fakebin:$PATH" "$H" doctor --kdir "$HOTUP_KBUILD"
check "load parent" load_parent capacity_mib=$MIB
check "load child v1" load_child 1
check "status works" "$H" status
check "doctor with the parent and a child loaded: in place, names the active child" doctor_says "$HOTUP_KBUILD" "ok +parent +hotup_parent loaded; state active, active child hotup_child_v1 \(version 1\)"
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

# Downgrades as an operator types them, without --schema: the module file
# says which schema v1 reads (hotup_schema=1) and the parent knows both
# children's at a standby switch, so v2 exports schema 1 either way.
check "the v1 module file declares its schema" sh -c "modinfo -F hotup_schema '$MODULES/hotup_child_v1.ko' | grep -qx 1"
check "status names the active child's schema" test "$(ctl child_schema)" -eq 2
check "fio is writing" wait_writes 200
dmesg_mark
check "hotupctl upgrade v1 --mode classic, no --schema" sh -c "'$H' upgrade '$MODULES/hotup_child_v1.ko' --mode classic > /tmp/u5.txt"
diag "$(cat /tmp/u5.txt)"
check "classic downgrade: it said v2 exports schema 1" grep -q 'the active child exports schema 1' /tmp/u5.txt
expect_dmesg "classic downgrade: the export-schema it set" "hotup: control export_schema=1"
expect_dmesg "classic downgrade: v1 adopted" "hotup: adopt gen=[0-9]+ child=hotup_child_v1 version=1 from=hotup_child_v2"
check "fio is writing" wait_writes 200
check "back to v2 (standby)" "$H" upgrade "$MODULES/hotup_child_v2.ko"
check "fio is writing" wait_writes 200
dmesg_mark
check "hotupctl upgrade v1 (standby), no --schema" "$H" upgrade "$MODULES/hotup_child_v1.ko"
expect_dmesg "standby downgrade: the parent chose schema 1" "hotup: schema-negotiated from=hotup_child_v2 from_schema=2 to=hotup_child_v1 to_schema=1 schema=1"
expect_dmesg "standby downgrade: resumed on v1" "hotup: resume gen=[0-9]+ child=hotup_child_v1 version=1 .*mode=standby"

fio_live_passed "hotupctl"
check "read-back pass verifies the whole device" fio_readback $MIB
check "no request failed" test "$(ctl failed)" -eq 0
check "rmmod child" rmmod "$(current_child)"
check "rmmod parent" rmmod hotup_parent
finish
