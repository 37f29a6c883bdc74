# description: faults on QEMU's NVMe controller behind hotup_nvme: a classic upgrade whose new child refuses the queues leaves the device parked (nothing fails) and the old version takes them back; classic and standby upgrades under interrupt load (a QD63 reader per vCPU, an interrupt per completion); rmmod of the parent refused while a child drives the device, then with the device bound it disables the controller; a child that loses a completion (inject_lost_completion) is caught by the parent's stuck-request watch, the next standby switch is called off at its bound instead of hanging, and unbinding the device ends the lost command with EIO
# timeout: 900
# nvme: 1
. "$HOTUP_REPO/userspace-tests/guest/lib.sh"
MIB=64

# nvme_irqs: interrupts the parent's handlers took so far, all CPUs.
nvme_irqs() {
    awk '/hotup_nvme/ { for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) s += $i } END { print s + 0 }' /proc/interrupts
}

# stuck_is N: the parent's status counts N requests held past stuck_ms.
stuck_is() { test "$(ctl stuck)" -eq "$1"; }

check "load the parent with nvme_pci=1 stuck_ms=3000" load_parent nvme_pci=1 stuck_ms=3000
expect_dmesg "the watch's bound logged" "hotup: load .* stuck_ms=3000 "
check "load hotup_nvme_v1 (it brings the controller up)" insmod "$MODULES/hotup_nvme_v1.ko"
check "prefill with verify headers" fio_prefill $MIB
fio_live $MIB
check "fio makes progress before the faults" wait_completions 2000

# 1. Classic: the new child refuses the queues. The old one has drained and
# gone, so the device parks (no request fails) and the old version, loaded
# again, adopts the state the refused child was offered.
dmesg_mark
failed0=$(sysfs failed)
check_fails "classic upgrade to v2 with inject_adopt_error=1: the old child goes, the new one's insmod fails" nvme_upgrade_to 2 inject_adopt_error=1
expect_dmesg "rolled back, parked, the state kept" "hotup: rollback child=hotup_nvme_v2 version=2 err=-[0-9]+ state=parked"
check "the device is parked" test "$(ctl state)" = parked
check "fio is still running (its I/O parks)" kill -0 $FIO
check "nothing failed while parked" test "$(sysfs failed)" -eq "$failed0"
check "the old version loads again" insmod "$MODULES/hotup_nvme_v1.ko"
expect_dmesg "it adopts the queues it left" "hotup_nvme_v1: adopt dev=0 io_queues=2 .* from_version=1"
expect_dmesg "it owns the interrupts again" "hotup: hw-own child=hotup_nvme_v1 "
check "I/O flows again" wait_completions 2000

# 2. Upgrades while the controller interrupts as fast as it can: a reader at
# queue depth 63 on each vCPU beside the live workload, so handlers run on
# both CPUs while the gate disowns and owns the vectors.
fio --name=storm --ioengine=libaio --direct=1 --filename=$DEV --readonly --size=${MIB}M \
    --rw=randread --bs=4k --iodepth=63 --numjobs=2 --time_based --runtime=600 \
    --output-format=json --output="$HOTUP_OUT/fio-storm.json" > "$HOTUP_OUT/fio-storm.log" 2>&1 &
STORM=$!
check "the storm reads" wait_completions 4000
i0=$(nvme_irqs); t0=$(cut -d' ' -f1 /proc/uptime)
dmesg_mark
check "storm: classic v1 -> v2" nvme_upgrade_to 2
check "storm: I/O flows" wait_completions 2000
check "storm: standby v2 -> v1" nvme_standby_to 1
check "storm: I/O flows" wait_completions 2000
check "storm: classic v1 -> v2" nvme_upgrade_to 2
check "storm: I/O flows" wait_completions 2000
check "storm: standby v2 -> v1" nvme_standby_to 1
check "storm: I/O flows" wait_completions 2000
i1=$(nvme_irqs); t1=$(cut -d' ' -f1 /proc/uptime)
diag "interrupts during the 4 upgrades: $((i1 - i0)) in $(awk -v s="$t0" -v e="$t1" 'BEGIN { printf "%.1f", e - s }') s"
check "the handlers ran throughout: at least 1000 interrupts during the upgrades" test $((i1 - i0)) -ge 1000
n=$(dmesg_since_mark | grep -cE "hotup: hw-own child=hotup_nvme_v[12] ")
check "storm: the interrupts changed owner at every upgrade (4)" test "$n" -eq 4
expect_no_dmesg "storm: no stray completion, no failed command" "stray completion|command cid=[0-9]+ failed"
expect_no_dmesg "no request was reported stuck (the watch is quiet on a healthy child)" "reason=stuck-request"
check "the storm reader ran without error" sh -c "kill $STORM; wait $STORM; ! grep -q 'err=[ ]*[1-9]' '$HOTUP_OUT/fio-storm.log'"
fio_live_passed "through the refusal and the storm"
check "read-back pass verifies the whole range" fio_readback $MIB
check "no request failed" test "$(sysfs failed)" -eq 0
expect_nvme_trace "QEMU: one controller start so far" pci_nvme_mmio_start_success 1
expect_nvme_trace "QEMU: no stop, no queue deleted" pci_nvme_del_sq 0
expect_nvme_trace "QEMU: no error" 'pci_nvme_err_[a-z_]*' 0

# 3. rmmod of the parent: refused while a child drives the device; a stale
# state is refused; with the device bound and no child, the parent
# disables the controller.
check "unload the retired children" unload_retired
check_fails "rmmod of the parent is refused while a child is loaded" rmmod hotup_parent
check "the child still works" fio_pass 4 7

# An admin command that times out may still be the controller's: its data
# page is not reused until its late completion has been consumed, by this
# child or by the next (the bookkeeping lives in the arena with the queue).
model_is_qemu() { test "$(nvme_field mn id-ctrl $NVME_CTRL)" = "QEMU NVMe Ctrl"; }
dmesg_mark
check "standby v1 -> v2 with inject_admin_timeout=1" nvme_standby_to 2 inject_admin_timeout=1
check_fails "id-ctrl: its command is given up right after the doorbell (ETIMEDOUT)" nvme id-ctrl $NVME_CTRL
expect_dmesg "the child gave up on it" "hotup_nvme_v2: inject_admin_timeout: admin command passthrough \\(cid [0-9]+\\) given up at once"
check "unload the retired v1" unload_retired
check "standby v2 -> v1 with that command's completion not yet consumed" nvme_standby_to 1
wait_for "the next id-ctrl, on v1, answers QEMU's model (EBUSY until the late completion is in)" 20 model_is_qemu
expect_dmesg "v1 consumed the late completion as the timed-out command's: inherited with the queue" "hotup_nvme_v1: admin queue: the timed-out command \\(cid [0-9]+\\) completed at last"
expect_no_dmesg "no completion taken for the wrong command" "late completion \\(cid"
check "unload the retired v2" unload_retired
# A stale state: the same version refusing the fresh one makes the parent
# offer its last good state, written before the controller ran on. The
# queues' epoch in the arena refuses it (adopting it would make the
# controller run old submission entries again, DMA to freed pages).
dmesg_mark
c=$(current_child); v=${c#hotup_nvme_v}
check_fails "classic upgrade $c -> $c with inject_adopt_error=1 (the producer's version refuses it)" nvme_upgrade_to $v inject_adopt_error=1
check_fails "$c again: offered the last good state, which is stale" insmod "$MODULES/hotup_nvme_v$v.ko"
expect_dmesg "the stale state is refused by its epoch" "hotup_nvme_v$v: refuse: a stale state \(epoch [0-9]+; the queues are at epoch [0-9]+"
check "the device stays parked, nothing failed" test "$(ctl state)" = parked
expect_nvme_trace "QEMU: no error (no stale entry ran)" 'pci_nvme_err_[a-z_]*' 0
dmesg_mark
check "rmmod the parent with the controller bound" rmmod hotup_parent
expect_dmesg "the unload disabled it" "hotup: pci-unbound dev=[0-9a-f:.]+ disabled=0 vectors=3"
expect_nvme_trace "QEMU: the parent's unload stopped the controller (once)" pci_nvme_mmio_stopped 1

# 4. A child that loses a completion: the command stays outstanding in it
# and its request in the parent. The watch reports it past its bound; a
# standby switch, which must drain, is called off at its bound; unbinding
# the device makes the child fail what it holds, the lost one included.
check "reload the parent: stuck_ms=2000 switch_timeout_ms=3000" load_parent nvme_pci=1 stuck_ms=2000 switch_timeout_ms=3000
dmesg_mark
check "load hotup_nvme_v1 with inject_lost_completion=500 (a fresh bring-up)" insmod "$MODULES/hotup_nvme_v1.ko" inject_lost_completion=500
fio --name=lossy --ioengine=libaio --direct=1 --filename=$DEV --size=${MIB}M --rw=randwrite --bs=4k \
    --iodepth=16 --time_based --runtime=300 --output-format=json --output="$HOTUP_OUT/fio-lossy.json" \
    > "$HOTUP_OUT/fio-lossy.log" 2>&1 &
W=$!
wait_dmesg "the child dropped a completion" 60 "hotup_nvme_v1: inject_lost_completion: the completion of cid=[0-9]+ dropped"
wait_dmesg "the parent reports the request stuck past its bound" 10 "hotup: error reason=stuck-request q=[0-9]+ tag=[0-9]+ age_ms=[0-9]+ bound_ms=2000"
age=$(dmesg_since_mark | sed -n 's/.*reason=stuck-request .*age_ms=\([0-9]*\).*/\1/p' | head -n 1)
check "reported after the bound, not before (age_ms=$age)" test "${age:-0}" -ge 2000
check "status shows it (stuck=1)" stuck_is 1
check "reported once" test "$(dmesg_since_mark | grep -c 'reason=stuck-request')" -eq 1
check "the rest of the I/O flows around it" wait_completions 2000
check_fails "a standby switch cannot drain it: called off at its bound" nvme_standby_to 2
expect_dmesg "the switch was called off, the old child resumed" "hotup: abort gen=[0-9]+ child=hotup_nvme_v1 version=1 reason=drain-timeout waited_ms=[0-9]+ inflight=[1-9][0-9]* .* state=resumed"
check "still v1" test "$(current_child)" = hotup_nvme_v1
check "I/O flows after the called-off switch" wait_completions 2000
if grep -q "^hotup_nvme_v2 " /proc/modules; then check "unload the standby" rmmod hotup_nvme_v2; fi
BDF=$(basename "$(ls -d /sys/bus/pci/drivers/hotup_parent/0000:* | head -n 1)")
check "unbind the controller" sh -c "echo $BDF > /sys/bus/pci/drivers/hotup_parent/unbind"
expect_dmesg "the unbind waited its bound for the lost command, the rest finished" "hotup: hw-closing dev=0 waited_ms=1[0-9]{3} inflight=1 bound_ms=1000"
expect_dmesg "the child failed what was left: the lost command" "hotup_nvme_v1: device gone: 1 outstanding commands failed with EIO"
check "fio ends (with the errors it must see)" sh -c "wait $W; test \$? -ne 0"
wait_for "nothing is stuck any more (stuck=0)" 10 stuck_is 0
check "the child's unload returns" timeout 60 rmmod hotup_nvme_v1
check "rmmod the parent" rmmod hotup_parent
expect_nvme_trace "QEMU: two starts (power-on bring-up, the fresh one)" pci_nvme_mmio_start_success 2
finish
