# hotup's long-lived guest (`cargo xtask qemu up`): loads the parent and
# hotup_child_v1, then runs the host's commands from the shared folder.
#
# Protocol (folder $HOTUP_OUT/cmd, shared with the host over 9p): the host
# writes ID.req (a shell script) atomically; the agent starts it at once, in
# the background (so a workload started by one `qemu exec` runs while another
# command, e.g. `upgrade-child`, comes in), with its output in ID.out, and
# when it ends writes ID.rc (the exit status) atomically.
# The host creates $HOTUP_OUT/shutdown to stop the guest. The folder is
# polled: inotify in the guest does not see writes made on the host's side.
. "$HOTUP_REPO/userspace-tests/guest/hotup.sh"
CMD="$HOTUP_OUT/cmd"
mkdir -p "$CMD"
if load_parent && load_child 1; then
    echo "ready $(current_child)" > "$HOTUP_OUT/ready.tmp"
else
    { echo "failed"; dmesg | tail -n 30; } > "$HOTUP_OUT/ready.tmp"
fi
mv "$HOTUP_OUT/ready.tmp" "$HOTUP_OUT/ready"
while [ ! -e "$HOTUP_OUT/shutdown" ]; do
    for req in "$CMD"/*.req; do
        [ -e "$req" ] || continue
        id=$(basename "$req" .req)
        mv "$req" "$CMD/$id.sh"
        (
            cd /tmp && sh "$CMD/$id.sh" > "$CMD/$id.out" 2>&1 < /dev/null
            echo $? > "$CMD/$id.rc.tmp"
            mv "$CMD/$id.rc.tmp" "$CMD/$id.rc"
        ) &
    done
    sleep 0.05   # poll interval of the command folder
done
echo "agent: shutdown requested"
