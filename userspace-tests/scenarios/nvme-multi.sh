# description: two QEMU NVMe controllers behind one parent, one hotup_nvme child driving both: no disk until a child's adopt says each namespace's geometry, then /dev/hotupblkN (its size and LBA size from Identify Namespace) and /dev/hotupN per controller; standby and classic switches hand both devices over (an adopt and a resume-disk line per device) under a lost-write-detecting fio on each disk; a child that refuses only the second device's state rolls the switch back for both (standby: the old child resumes both; classic: parked, the old version recovers both, so the device it had adopted was given back); QEMU: a start per controller, no stop, reset or queue deletion
# timeout: 900
# nvme: 2
. "$HOTUP_REPO/userspace-tests/guest/lib.sh"
MIB=64
# Rounds of one standby switch and one classic upgrade each.
ROUNDS=${HOTUP_NVME_UPGRADES:-5}
NS_BLOCKS=65536
D1=$HOTUP_OUT/disk1

# disk_writes N: writes completed on /dev/hotupblkN (its stat's 5th field).
disk_writes() { set -- $(cat "/sys/block/hotupblk$1/stat"); echo "$5"; }
# disk_progress N W: disk N completed more than W writes.
disk_progress() { test "$(disk_writes "$1")" -gt "$2"; }

# The second disk's writer: fio_pass (hotup.sh: every block written once,
# then verified by its sequence number) in a loop on /dev/hotupblk1, its
# output in $D1, until $D1/stop.
disk1_start() {
    rm -rf "$D1"; mkdir -p "$D1"
    (
        use_device /dev/hotupblk1
        HOTUP_OUT=$D1
        _p=0
        while [ ! -e "$D1/stop" ]; do
            _p=$((_p + 1))
            fio_pass $MIB $_p --iodepth=16 >> "$D1/fio.log" 2>&1 || exit 1
        done
    ) &
    FIO1=$!
}
disk1_stop() { touch "$D1/stop"; wait $FIO1; }

check "load the parent with nvme_pci=1" load_parent nvme_pci=1
check "no disk before a child said the namespaces' geometry" test ! -e /dev/hotupblk0 -a ! -e /dev/hotupblk1
dmesg_mark
check "load hotup_nvme_v1: it brings both controllers up" insmod "$MODULES/hotup_nvme_v1.ko"
for n in 0 1; do
    expect_dmesg "controller $n brought up" "hotup_nvme_v1: bring-up dev=$n model=QEMU NVMe Ctrl serial=hotup-nvme$n nsze=$NS_BLOCKS lba_bytes=4096 "
    expect_dmesg "disk $n made from its namespace, after the adopt" "hotup: resume-disk gen=[0-9]+ disk=$n child=hotup_nvme_v1 name=hotupblk$n lba_bytes=4096 blocks=$NS_BLOCKS made=1"
    check "/dev/hotupblk$n is a block device" test -b /dev/hotupblk$n
    check "/dev/hotup$n is a character device" test -c /dev/hotup$n
    check "disk $n has the namespace's size" test "$(blockdev --getsize64 /dev/hotupblk$n)" -eq $((NS_BLOCKS * 4096))
    check "disk $n has the namespace's LBA size" test "$(cat /sys/block/hotupblk$n/queue/logical_block_size)" -eq 4096
    check "id-ctrl through /dev/hotup$n: controller $n's serial" test "$(nvme_field sn id-ctrl /dev/hotup$n)" = hotup-nvme$n
    check "id-ns through /dev/hotupblk$n: its namespace" test "$(nvme_field nsze id-ns /dev/hotupblk$n)" = $NS_BLOCKS
done
expect_nvme_trace "QEMU: each controller started once" pci_nvme_mmio_start_success 2
check "status: two disks" test "$(ctl disks)" -eq 2
check "status: the first disk's size is its namespace's" test "$(ctl capacity_bytes)" -eq $((NS_BLOCKS * 4096))
check "prefill disk 0 with verify headers" fio_prefill $MIB
use_device /dev/hotupblk1
check "prefill disk 1 with verify headers" fio_prefill $MIB
use_device /dev/hotupblk0

fio_live $MIB --iodepth=16
disk1_start
check "fio makes progress" wait_completions 2000
to=2
r=0
while [ $r -lt $ROUNDS ]; do
    r=$((r + 1))
    for mode in standby classic; do
        from=$(current_child)
        dmesg_mark
        check "round $r $mode: disk 0 is being written" wait_writes 200 || break
        w1=$(disk_writes 1)
        case $mode in
        standby) check "round $r: $from -> hotup_nvme_v$to (standby switch)" nvme_standby_to $to ;;
        classic) check "round $r: $from -> hotup_nvme_v$to (classic upgrade)" nvme_upgrade_to $to ;;
        esac
        for n in 0 1; do
            expect_dmesg "round $r $mode: device $n's queues handed over" "hotup_nvme_v$to: adopt dev=$n io_queues=2 io_sq_tail=[0-9]+ io_cq_head=[0-9]+"
            expect_dmesg "round $r $mode: a resume line for disk $n (kept, not made again)" "hotup: resume-disk gen=[0-9]+ disk=$n child=hotup_nvme_v$to name=hotupblk$n lba_bytes=4096 blocks=$NS_BLOCKS made=0"
        done
        expect_dmesg "round $r $mode: resumed" "hotup: resume gen=[0-9]+ child=hotup_nvme_v$to .* blackout_ns=[0-9]+"
        expect_no_dmesg "round $r $mode: no stray completion" "stray completion|command cid=[0-9]+ failed"
        diag "$(dmesg_since_mark | grep -E 'hotup: resume gen' | sed 's/^\[[^]]*\] //')"
        check "round $r $mode: fio still running on disk 0" kill -0 $FIO || break
        check "round $r $mode: fio still running on disk 1" kill -0 $FIO1 || break
        check "round $r $mode: I/O flows again on disk 0" wait_completions 2000
        wait_for "round $r $mode: I/O flows again on disk 1" 60 disk_progress 1 "$w1"
        to=$((3 - to))
    done
done

# One device's refusal rolls the switch back for both. The refusing child
# adopts device 0 first (its queues taken, its epoch advanced), then
# refuses device 1's state: device 0 must be given back as it was.
from=$(current_child)
dmesg_mark
w1=$(disk_writes 1)
check_fails "a standby refusing device 1's state only: the switch fails" nvme_standby_to $to inject_adopt_error=2
expect_dmesg "standby: device 0 adopted first" "hotup_nvme_v$to: adopt dev=0 "
expect_dmesg "standby: device 1 refused, the adopt fails for both" "hotup_nvme_v$to: adopt refused by device 1 .* rolls back for all 2"
expect_dmesg "standby: device 0 given back (its epoch restored)" "hotup_nvme_v$to: unadopt dev=0 epoch=[0-9]+"
expect_dmesg "standby: rolled back, the old child resumed" "hotup: rollback child=hotup_nvme_v$to version=$to step=adopt .* state=resumed active=$from"
expect_no_dmesg "standby: no disk made by the refused child" "hotup: resume-disk .*child=hotup_nvme_v$to"
check "standby: still the old child" test "$(current_child)" = "$from"
check "standby: I/O flows on disk 0 on the old child" wait_completions 2000
wait_for "standby: I/O flows on disk 1 on the old child" 60 disk_progress 1 "$w1"
check "unload the refused standby" rmmod hotup_nvme_v$to

oldv=${from#hotup_nvme_v}
dmesg_mark
check_fails "classic upgrade to a v$to refusing device 1's state: its load fails" nvme_upgrade_to $to inject_adopt_error=2
expect_dmesg "classic: device 0 given back" "hotup_nvme_v$to: unadopt dev=0 epoch=[0-9]+"
expect_dmesg "classic: parked with the state kept" "hotup: rollback child=hotup_nvme_v$to version=$to err=-22 state=parked .* blob=kept"
check "classic: nothing is active (I/O parks)" test -z "$(current_child)"
w1=$(disk_writes 1)
dmesg_mark
# Without this, I/O stays parked for good: the scenario ends here.
check "classic: the old version, loaded again, recovers" insmod "$MODULES/hotup_nvme_v$oldv.ko" || finish
for n in 0 1; do
    expect_dmesg "classic: device $n adopted by the old version (not stale: given back)" "hotup_nvme_v$oldv: adopt dev=$n io_queues=2 "
done
check "classic: I/O flows on disk 0" wait_completions 2000
wait_for "classic: I/O flows on disk 1" 60 disk_progress 1 "$w1"

fio_live_passed "disk 0 through every switch"
disk1_stop
check "disk 1: every fio pass verified (no I/O error, no lost or stale write)" test $? -eq 0
grep -E 'verify|bad header|error|err=' "$D1/fio.log" | head -n 5 | while read -r l; do diag "fio disk 1: $l"; done
set -- $(HOTUP_OUT=$D1 fio_live_totals)
diag "disk 1: $1 passes, $2 blocks written, $3 verified, $4 errors"
check "disk 1: at least one whole pass ran" test "${1:-0}" -gt 0
check "disk 1: no error in fio's JSON" test "${4:-1}" -eq 0
check "disk 0: the read-back pass verifies the whole range" fio_readback $MIB
use_device /dev/hotupblk1
check "disk 1: the read-back pass verifies the whole range" fio_readback $MIB
use_device /dev/hotupblk0
check "no request failed" test "$(sysfs failed)" -eq 0
check "id-ctrl through /dev/hotup1 after the switches: still controller 1" test "$(nvme_field sn id-ctrl /dev/hotup1)" = hotup-nvme1

# The witness: neither controller was reset.
expect_nvme_trace "QEMU: still one start per controller" pci_nvme_mmio_start_success 2
expect_nvme_trace "QEMU: no controller stop" pci_nvme_mmio_stopped 0
expect_nvme_trace "QEMU: no reset beyond each one's power-on" pci_nvme_pci_reset 2
expect_nvme_trace "QEMU: I/O submission queues created at bring-up only (2 per controller)" pci_nvme_create_sq 4
expect_nvme_trace "QEMU: no queue deleted" pci_nvme_del_sq 0
expect_nvme_trace "QEMU: no error" 'pci_nvme_err_[a-z_]*' 0

# A controller bound since the state was written (unbound, then bound
# again: a new device index) is brought up by the next switch on its own,
# inside it, while the others are handed over.
BDFS=$(for d in /sys/bus/pci/devices/*; do [ "$(cat $d/vendor):$(cat $d/device)" = 0x1b36:0x0010 ] && basename $d; done)
set -- $BDFS; B=$2
fio_live $MIB --iodepth=16
dmesg_mark
check "unbind controller 1 ($B)" sh -c "echo $B > /sys/bus/pci/drivers/hotup_parent/unbind"
expect_dmesg "controller 1 gone" "hotup: hw-gone dev=1"
check "bind it again" sh -c "echo $B > /sys/bus/pci/drivers/hotup_parent/bind"
expect_dmesg "bound again as device 2" "hotup: pci-bound dev=$B "
check "disk 0 is being written" wait_writes 200
check "a standby switch with the new controller" nvme_standby_to $to
expect_dmesg "device 0 handed over" "hotup_nvme_v$to: adopt dev=0 io_queues=2 "
expect_dmesg "the new controller, with no state, brought up inside the switch" "hotup_nvme_v$to: bring-up dev=2 model=QEMU NVMe Ctrl serial=hotup-nvme1 "
expect_dmesg "its disk made after the switch" "hotup: resume-disk gen=[0-9]+ disk=2 child=hotup_nvme_v$to name=hotupblk2 lba_bytes=4096 blocks=$NS_BLOCKS made=1"
check "/dev/hotupblk2 is a block device" test -b /dev/hotupblk2
use_device /dev/hotupblk2
check "what was written through disk 1 verifies through disk 2 (the same namespace)" fio_readback $MIB
use_device /dev/hotupblk0
check "I/O flows on disk 0" wait_completions 2000
fio_live_passed "disk 0 through the unbind, the bind and the switch"
to=$((3 - to))

check "unload the retired children" unload_retired
check "rmmod the child" rmmod "$(current_child)"
dmesg_mark
check "rmmod the parent: both disks go, both controllers are disabled" rmmod hotup_parent
check "no disk left" test ! -e /dev/hotupblk0 -a ! -e /dev/hotupblk1 -a ! -e /dev/hotupblk2 -a ! -e /dev/hotup1
# Stops: controller 1 at its unbind, then both at the unload.
wait_for "QEMU: the parent's unload stops both controllers" 30 nvme_trace_is pci_nvme_mmio_stopped -eq 3
finish
