#!/usr/bin/env bash
# Installs what the real-kernel layer (tests/realnic, CIAO_NODES=qemu) needs, so that
# nothing downloads at test time:
#   - QEMU 10.x from Debian bookworm-backports (bookworm's 7.2 has no `-device igb`),
#     qemu-guest-agent (runs inside the guests), busybox-static, kmod, cpio;
#   - Debian's guest kernel (linux-image-6.1.0-*-amd64), fetched with `apt-get download`
#     and unpacked with `dpkg -x` into var/realnic/kernel/, its uncompressed ELF
#     `vmlinux` extracted (PVH boot: the kernel starts in 0.7 s instead of 4.3 s under TCG);
#   - a busybox initramfs with the modules the guests load.
# Idempotent and quiet when everything is there already. Root.
set -euo pipefail
cd "$(dirname "$0")/.."
R=${CIAO_REALNIC_DIR:-$PWD/var/realnic}
INIT=ciaoweb/localcluster/qemu/initramfs-init.sh
# nf_tables: the DHCP servers' chaddr guard (ciaoweb/agent/dhcp/guard.py)
MODULES="virtio_pci virtio_console virtio_net 9pnet_virtio 9p overlay igb igbvf 8021q veth bridge vxlan nf_tables"
export DEBIAN_FRONTEND=noninteractive
say() { echo "realnic-setup: $*"; }

if [ "$(id -u)" != 0 ]; then
  echo "realnic-setup: needs root (apt, dpkg)" >&2
  exit 1
fi

# --- 1. host packages -----------------------------------------------------------
src=/etc/apt/sources.list.d/bookworm-backports.sources
updated=0
apt_update() { [ $updated = 1 ] || { apt-get update -qq; updated=1; }; }
if ! { command -v qemu-system-x86_64 >/dev/null && qemu-system-x86_64 -device help 2>/dev/null | grep -q '"igb"'; } \
   || ! command -v qemu-ga >/dev/null; then
  if [ ! -f "$src" ] && ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
    say "adding Debian bookworm-backports"
    cat >"$src" <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  fi
  say "installing qemu-system-x86 and qemu-guest-agent from bookworm-backports"
  apt_update
  apt-get install -y -qq --no-install-recommends -t bookworm-backports \
    qemu-system-x86 qemu-guest-agent >/dev/null
fi
need=()
command -v depmod >/dev/null || need+=(kmod)
command -v cpio >/dev/null || need+=(cpio)
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  apt_update
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# --- 2. guest kernel and a static busybox, unpacked (not installed) -------------------
mkdir -p "$R/debs"
if ! ls "$R"/kernel/boot/vmlinuz-* >/dev/null 2>&1; then
  apt_update
  kpkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
  [ -n "$kpkg" ] || { echo "realnic-setup: no linux-image-6.x-amd64 in apt" >&2; exit 1; }
  say "fetching $kpkg"
  rm -f "$R"/debs/linux-image-*.deb
  (cd "$R/debs" && apt-get download -qq "$kpkg" 2>&1 | grep -v -i unsandboxed || true)
  rm -rf "$R/kernel.tmp" && mkdir -p "$R/kernel.tmp"
  dpkg -x "$R"/debs/"$kpkg"_*.deb "$R/kernel.tmp"
  depmod -b "$R/kernel.tmp" "$(ls "$R/kernel.tmp/lib/modules")"
  rm -rf "$R/kernel" && mv "$R/kernel.tmp" "$R/kernel"
fi
if [ ! -x "$R/busybox/bin/busybox" ]; then
  apt_update
  say "fetching busybox-static"
  rm -f "$R"/debs/busybox-static_*.deb
  (cd "$R/debs" && apt-get download -qq busybox-static 2>&1 | grep -v -i unsandboxed || true)
  rm -rf "$R/busybox.tmp" && mkdir -p "$R/busybox.tmp"
  dpkg -x "$R"/debs/busybox-static_*.deb "$R/busybox.tmp"
  rm -rf "$R/busybox" && mv "$R/busybox.tmp" "$R/busybox"
fi
# The uncompressed ELF (Debian builds with CONFIG_PVH=y): QEMU boots it directly.
vmlinuz=$(ls "$R"/kernel/boot/vmlinuz-* | head -1)
if [ ! -s "$R/vmlinux" ] || [ "$vmlinuz" -nt "$R/vmlinux" ]; then
  say "extracting vmlinux from $(basename "$vmlinuz")"
  python3 - "$vmlinuz" "$R/vmlinux.tmp" <<'PY'
import lzma, sys
data = open(sys.argv[1], "rb").read()
start = data.find(b"\xfd7zXZ\x00")
elf = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(data[start:])
assert elf[:4] == b"\x7fELF", "not an ELF kernel"
open(sys.argv[2], "wb").write(elf)
PY
  mv "$R/vmlinux.tmp" "$R/vmlinux"
fi

# --- 3. the initramfs: busybox, the modules (with their dependencies), our /init -------
if [ ! -s "$R/initramfs.cpio.gz" ] || [ "$INIT" -nt "$R/initramfs.cpio.gz" ] \
   || [ "$vmlinuz" -nt "$R/initramfs.cpio.gz" ] || [ "$0" -nt "$R/initramfs.cpio.gz" ]; then
  say "building the initramfs"
  kv=$(ls "$R/kernel/lib/modules")
  tree="$R/initramfs.tmp"
  rm -rf "$tree" && mkdir -p "$tree"/{bin,proc,sys,dev,lib/modules}
  cp "$R/busybox/bin/busybox" "$tree/bin/busybox"
  install -m 0755 "$INIT" "$tree/init"
  : >"$tree/modules.order"
  for mod in $MODULES; do
    for f in $(modprobe -d "$R/kernel" -S "$kv" --show-depends "$mod" | awk '$1=="insmod"{print $2}'); do
      b=$(basename "$f")
      grep -qx "$b" "$tree/modules.order" || { cp "$f" "$tree/lib/modules/"; echo "$b" >>"$tree/modules.order"; }
    done
  done
  (cd "$tree" && find . | cpio -o -H newc --quiet | gzip -1 >"$R/initramfs.cpio.gz.tmp")
  mv "$R/initramfs.cpio.gz.tmp" "$R/initramfs.cpio.gz"
  rm -rf "$tree"
fi
