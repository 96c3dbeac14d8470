#!/bin/busybox sh
# /init of the guests' initramfs (built by scripts/realnic-setup.sh): load the modules,
# mount the host's / read-only over 9p under a tmpfs overlay, switch_root into it and run
# the stage-2 script named on the kernel command line (ciao.stage2=<path on the host>).
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /modules.order); do
  insmod "/lib/modules/$m" 2>/dev/null || echo "[ciao-init] insmod $m failed"
done
stage2=$(sed -n 's/.*ciao\.stage2=\([^ ]*\).*/\1/p' /proc/cmdline)
mkdir -p /host /rw /newroot
if ! mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=524288,cache=loose hostroot /host; then
  echo "[ciao-init] 9p mount of the host root failed"; exec sh
fi
mount -t tmpfs -o size=75% tmpfs /rw
mkdir -p /rw/upper /rw/work
mount -t overlay overlay -o lowerdir=/host,upperdir=/rw/upper,workdir=/rw/work /newroot || {
  echo "[ciao-init] overlay mount failed"; exec sh; }
mount --move /proc /newroot/proc
mount --move /sys /newroot/sys
mount --move /dev /newroot/dev
mount -t tmpfs -o mode=0755 tmpfs /newroot/run
cp /bin/busybox /newroot/run/busybox
echo "[ciao-init] switch_root at $(cut -d' ' -f1 /newroot/proc/uptime)s"
exec switch_root /newroot /run/busybox sh "$stage2"
