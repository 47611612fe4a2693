#!/usr/bin/env bash
# fetch-gpu-deps.sh — downloads the Debian packages of the build dependencies
# (cJSON, PCRE2, utf8proc) into .gpu-deps/, for GPU machines that have no
# network and lack them. Run here; name .gpu-deps in the device call's carry.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .gpu-deps
cd .gpu-deps
apt-get download libcjson-dev libcjson1 libpcre2-dev libpcre2-8-0 libutf8proc-dev libutf8proc2 2>/dev/null
ls -1 *.deb
