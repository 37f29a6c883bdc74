# Exits with status 3 (checks that qemu run passes the status through).
exit 3
