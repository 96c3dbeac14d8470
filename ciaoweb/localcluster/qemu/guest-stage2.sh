# Stage 2 of a ciao guest, PID 1 after switch_root (run by /run/busybox sh; the root is the
# host's / under a tmpfs overlay). Reads ciao.* parameters from the kernel command line:
#   ciao.name=NAME          hostname
#   ciao.rename=MAC=IF,...  rename the netdev with MAC to IF (PFs get their topology names)
#   ciao.mgmt=MAC           the virtio-net NIC on QEMU user networking: 10.0.2.15/24,
#                           default route via 10.0.2.2 (the host's loopback services)
#   ciao.tunnel=IP/LEN      the address of the NIC renamed ciao-tun (the VXLAN underlay)
#   ciao.share=PATH         mount the 9p tag "ciaoshare" read-write at PATH (same path as
#                           on the host, so files written there appear on the host)
# then starts qemu-ga on the virtio-serial port org.qemu.guest_agent.0 (how the host runs
# commands in here) and reaps orphans forever. Poweroff: `/run/busybox poweroff -f`.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C HOME=/root
bb=/run/busybox
arg() { $bb sed -n "s/.*ciao\.$1=\([^ ]*\).*/\1/p" /proc/cmdline; }
up() { $bb cut -d' ' -f1 /proc/uptime; }
mount -t devpts -o ptmxmode=0666 devpts /dev/pts 2>/dev/null || { mkdir -p /dev/pts; mount -t devpts devpts /dev/pts; }
mkdir -p /dev/shm && mount -t tmpfs tmpfs /dev/shm
ln -sf /proc/self/fd /dev/fd; ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout; ln -sf /proc/self/fd/2 /dev/stderr
# No tmpfs on /tmp: the root is already a tmpfs overlay, and the host's /tmp (where a
# checkout may live, CI's included) must stay visible through it.
mkdir -p /run/netns /run/lock /run/qga /root
name=$(arg name); [ -n "$name" ] && $bb hostname "$name"
ip link set lo up
for pair in $(arg rename | tr ',' ' '); do
  mac=${pair%%=*}; want=${pair#*=}
  for d in /sys/class/net/*; do
    if [ "$(cat "$d/address")" = "$mac" ]; then
      ip link set "$(basename "$d")" name "$want" || echo "[ciao-stage2] rename to $want failed"
    fi
  done
done
mgmt=$(arg mgmt)
if [ -n "$mgmt" ]; then
  for d in /sys/class/net/*; do
    if [ "$(cat "$d/address")" = "$mgmt" ]; then
      dev=$(basename "$d"); ip link set "$dev" name ciao-mgmt && dev=ciao-mgmt
      ip addr add 10.0.2.15/24 dev "$dev"; ip link set "$dev" up
      ip route add default via 10.0.2.2
    fi
  done
fi
tunnel=$(arg tunnel)
if [ -n "$tunnel" ]; then
  ip addr add "$tunnel" dev ciao-tun && ip link set ciao-tun up \
    || echo "[ciao-stage2] tunnel address $tunnel failed"
fi
share=$(arg share)
if [ -n "$share" ]; then
  mkdir -p "$share"
  mount -t 9p -o trans=virtio,version=9p2000.L,msize=524288 ciaoshare "$share" \
    || echo "[ciao-stage2] 9p mount of the share failed"
fi
port=
for d in /sys/class/virtio-ports/*; do
  [ "$(cat "$d/name" 2>/dev/null)" = org.qemu.guest_agent.0 ] && port=/dev/$(basename "$d")
done
if [ -z "$port" ]; then
  echo "[ciao-stage2] no virtio-serial port org.qemu.guest_agent.0"
else
  qemu-ga -m virtio-serial -p "$port" -t /run/qga -f /run/qga/qemu-ga.pid &
fi
echo "[ciao-stage2] ready at $(up)s"
# PID 1: reap every orphan (what guest-exec starts in the background ends up here).
trap '' TERM INT
while :; do wait; $bb sleep 1; done
