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
if ! (have redis-cli && redis-cli -h 127.0.0.1 ping >/dev/null 2>&1) && ! have redis-server; then
  need+=(redis-server)
fi
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing packages ${need[*]}: run as root or install them" >&2
    exit 1
  fi
  echo "installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
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
  .venv/bin/pip install -q -e '.[test,bench]'
  touch "$stamp"
fi
