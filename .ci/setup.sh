#!/usr/bin/env bash
# Installs what the tests need on a fresh Debian machine with a Rust toolchain:
# the Debian packages listed in .ci/apt-*.txt and a Python virtual environment
# (.venv) with the packages of .ci/pip-*.txt. Idempotent: a second run only
# checks.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo_() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

mapfile -t apt_pkgs < <(cat .ci/apt-*.txt 2>/dev/null | sed 's/#.*//' | tr -s ' \t' '\n' | grep -v '^$' | sort -u)
missing=()
for p in "${apt_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  sudo_ apt-get update -qq
  sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ls .ci/pip-*.txt >/dev/null 2>&1; then
  if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
  fi
  reqs=$(cat .ci/pip-*.txt | sed 's/#.*//' | grep -v '^\s*$' | sort -u)
  stamp=.venv/.torii-requirements
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$reqs" ]; then
    echo "setup: installing Python packages into .venv"
    .venv/bin/python -m pip install -q --disable-pip-version-check $reqs
    printf '%s' "$reqs" > "$stamp"
  fi
fi
