#!/usr/bin/env bash
# install-deps.sh — installs the build dependencies on Debian/Ubuntu (idempotent).
# Uses sudo when not root. CUDA is optional: without nvcc the CPU build is made.
set -euo pipefail
pkgs=(cmake make gcc pkg-config libcjson-dev libpcre2-dev libutf8proc-dev)
if ! command -v npm >/dev/null 2>&1; then pkgs+=(npm); fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
