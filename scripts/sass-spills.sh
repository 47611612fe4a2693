#!/usr/bin/env bash
# sass-spills.sh BINARY [KERNEL_REGEX] — where the decode kernel touches local
# memory (spills, stack): each STL/LDL with the source line it belongs to.
# Needs cuobjdump and nvdisasm (the CUDA toolkit of the GPU machine).
set -uo pipefail
bin=$(realpath "$1")
kern=${2:-md_megakernel16md_decode_kernelILb1}
tmp=$(mktemp -d)
(cd "$tmp" && cuobjdump -xelf all "$bin" > /dev/null)
for f in "$tmp"/*.cubin; do
  nvdisasm -g -c "$f" 2> /dev/null | awk -v k="$kern" '
    /^[[:space:]]*\.text\./ { on = ($0 ~ k) }
    on && /\/\/## File/ { loc = $0; sub(/.*\/\/## File "/, "", loc); sub(/", line /, ":", loc); sub(/ .*/, "", loc) }
    on && /(STL|LDL)/ { n[loc]++ }
    END { for (l in n) printf "%5d %s\n", n[l], l }' | sort -rn | head -25
done
rm -rf "$tmp"
