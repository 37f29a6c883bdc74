# description: unbinding QEMU's NVMe controller (throttled to 200 IOPS, so it holds commands) from the parent under a live workload on hotup_nvme: the parent stops new commands, lets the controller finish what it holds (bounded, as the kernel's driver does before it deletes its queues: nothing it held is failed), disables it and tells the owning child the device is gone, so later I/O fails fast, the child's unload drains and returns and the parent unloads; the device binds again with a fresh bring-up
# timeout: 600
# nvme: 1
# nvme-iops: 200
. "$HOTUP_REPO/userspace-tests/guest/lib.sh"

check "load the parent with nvme_pci=1" load_parent nvme_pci=1
BDF=$(basename "$(ls -d /sys/bus/pci/drivers/hotup_parent/0000:* | head -n 1)")
check "the parent has the controller ($BDF)" test -e "/sys/bus/pci/drivers/hotup_parent/$BDF"
check "load hotup_nvme_v1" insmod "$MODULES/hotup_nvme_v1.ko"
fio --name=w --ioengine=libaio --direct=1 --filename=$DEV --size=64M --rw=randwrite --bs=4k \
    --iodepth=32 --time_based --runtime=120 --output-format=json --output="$HOTUP_OUT/fio-unbind.json" \
    > "$HOTUP_OUT/fio-unbind.log" 2>&1 &
W=$!
check "writes flow on the controller" wait_writes 100
dmesg_mark
check "unbind the controller under load" sh -c "echo $BDF > /sys/bus/pci/drivers/hotup_parent/unbind"
expect_dmesg "the commands the controller held finished before the disable (none left in flight)" "hotup: hw-closing dev=0 waited_ms=[0-9]+ inflight=0 bound_ms=1000"
expect_dmesg "the parent disabled it" "hotup: pci-unbound dev=$BDF disabled=0 vectors=3"
expect_dmesg "the owning child heard the device is gone" "hotup: hw-gone dev=0"
expect_no_dmesg "nothing the controller held was failed" "device gone: [1-9][0-9]* outstanding commands failed"
check "later I/O fails fast: fio ends with errors (as it must)" sh -c "wait $W; test \$? -ne 0"
check "the child's unload drains and returns" timeout 60 rmmod hotup_nvme_v1
expect_dmesg "detach logged" "hotup: detach gen=[0-9]+ child=hotup_nvme_v1 "
check "rmmod the parent" rmmod hotup_parent
expect_nvme_trace "QEMU: the controller was stopped once (the unbind)" pci_nvme_mmio_stopped 1
check "reload the parent: it binds the controller again" load_parent nvme_pci=1
check "a fresh hotup_nvme_v1 brings it up again" insmod "$MODULES/hotup_nvme_v1.ko"
check "fio pass verifies on the fresh controller" fio_pass 4 1
expect_nvme_trace "QEMU: a second start, after the unbind only" pci_nvme_mmio_start_success 2
check "rmmod the child" rmmod hotup_nvme_v1
check "rmmod the parent" rmmod hotup_parent
finish
