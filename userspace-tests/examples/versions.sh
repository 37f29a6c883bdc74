# Prints the versions of the guest's tools and kernel (xtask qemu run example).
fio --version
mkfs.ext4 -V
cat /proc/version
