#!/usr/bin/env bash
# Installs what the project needs and is missing: Debian packages, then the venv.
# Idempotent and quiet when everything is there already.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
have() { command -v "$1" >/dev/null 2>&1; }
have dnsmasq || need+=(dnsmasq-base)
have busybox || need+=(busybox)
have udhcpc || need+=(udhcpc)
have nft || need+=(nftables)
have ip || need+=(iproute2)
have ping || need+=(iputils-ping)
have ps || need+=(procps)
if [ "${CIAO_BROWSER:-1}" = "1" ]; then
  have chromium || need+=(chromium)
  have chromedriver || need+=(chromium-driver)
fi
# Every local cluster (the demo, the end-to-end tests) runs its own redis-server with ACLs.
have redis-server || need+=(redis-server)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing packages ${need[*]}: run as root or install them" >&2
    exit 1
  fi
  echo "installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# The managed dnsmasq servers drop root to this user once their sockets are bound
# (ciaoweb/agent/dhcp/server.py): no home, no shell, no password.
DNSMASQ_USER=ciao-dnsmasq
if ! id -u "$DNSMASQ_USER" >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    echo "creating system user $DNSMASQ_USER"
    useradd --system --user-group --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin "$DNSMASQ_USER"
  else
    echo "warning: no user $DNSMASQ_USER (run scripts/bootstrap.sh as root): agents cannot start dnsmasq" >&2
  fi
fi

PY=${PYTHON:-python3.11}
have "$PY" || PY=python3
if [ ! -x .venv/bin/python ]; then
  echo "creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "installing python packages"
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[controller,test,bench]'
  touch "$stamp"
fi

# The real-kernel node kind (QEMU igb guests): only when asked (CI calls it itself).
if [ "${CIAO_REALNIC:-0}" = 1 ] || [ "${CIAO_NODES:-sim}" = qemu ]; then
  scripts/realnic-setup.sh
fi
