#!/usr/bin/env python3
"""sass_footprint.py SOURCE_CSV_GZ SASS_LINES_GZ [KERNEL_PREFIX] — how much
distinct SASS the decode kernel executes per launch (its instruction-cache
footprint: ~128 KB fit in an H100 SM, bench/icache_probe.cu) and where it
sits, from scripts/gpu-profile.sh's outputs:
  SOURCE_CSV_GZ   `ncu --page source --csv --print-source sass` (per-instruction
                  execution counts and stall samples)
  SASS_LINES_GZ   `nvdisasm -g -c` of the same kernel's cubin (offset -> source line)
Prints the executed bytes, the executed bytes and no-instruction stall share
per source function, and the lines with the most no-instruction stalls."""
import collections
import signal
import sys

from sass_map import DECODE_KERNEL, function_namer, offsets_to_lines, source_page

signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # quiet under `| head`

src_csv, sass_lines = sys.argv[1], sys.argv[2]
off2src = offsets_to_lines(sass_lines, sys.argv[3] if len(sys.argv) > 3 else DECODE_KERNEL)
fn = function_namer()
hdr, data, v = source_page(src_csv)

base = int(data[0][0], 16)
by_fn = collections.defaultdict(lambda: [0, 0.0])
by_line = collections.defaultdict(lambda: [0, 0.0])
executed = 0
for r in data:
    src = off2src.get(int(r[0], 16) - base)
    ex, ni = v(r, 'Instructions Executed'), v(r, 'stall_no_inst')
    if ex > 0:
        executed += 16
        by_fn[fn(src)][0] += 16
    by_fn[fn(src)][1] += ni
    by_line[src][1] += ni
    by_line[src][0] += 16 if ex > 0 else 0
ni_total = sum(a[1] for a in by_fn.values()) or 1
print(f'kernel: {len(data)} SASS instructions ({len(data) * 16 // 1024} KB), executed at least once: '
      f'{executed // 16} ({executed // 1024} KB)')
print(f"{'function':44s} {'executed KB':>11s} {'no-instruction stalls':>22s}")
for k, a in sorted(by_fn.items(), key=lambda x: -x[1][0])[:25]:
    print(f'{k:44s} {a[0] / 1024:11.1f} {100 * a[1] / ni_total:21.1f}%')
print('lines with the most no-instruction stalls:')
for k, a in sorted(by_line.items(), key=lambda x: -x[1][1])[:12]:
    print(f'  {str(k):40s} {fn(k):40s} {100 * a[1] / ni_total:5.1f}%')
