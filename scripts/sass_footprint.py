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
import csv
import gzip
import os
import re
import signal
import sys

signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # quiet under `| head`

src_csv, sass_lines = sys.argv[1], sys.argv[2]
prefix = sys.argv[3] if len(sys.argv) > 3 else '_ZN13md_megakernel16md_decode_kernelILb1EE'
root = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')

# offset -> (file, line) for the kernel's instructions
lines = gzip.open(sass_lines, 'rt').read().split('\n')
start = next(i for i, l in enumerate(lines) if l.startswith(prefix) and l.rstrip().endswith(':'))
cur, off2src = None, {}
for l in lines[start + 1:]:
    if l.startswith('.text.') or (l.startswith('//----') and off2src):
        if off2src and l.startswith('//----'):
            break
        continue
    m = re.match(r'\s*//## File "(.*)", line (\d+)', l)
    if m:
        cur = (os.path.basename(m.group(1)), int(m.group(2)))
        continue
    m = re.match(r'\s*/\*([0-9a-f]{4,})\*/', l)
    if m:
        off2src[int(m.group(1), 16)] = cur


def functions(path):
    """(first line, name) of each function definition in a source file."""
    out = []
    try:
        for i, l in enumerate(open(path), 1):
            m = re.match(r'(?:template.*)?(?:__device__|__global__|static|__host__)[^(]*?(\w+)\(', l)
            if m:
                out.append((i, m.group(1)))
    except OSError:
        pass
    return out


funcs = {}
for d in ['src/cuda/decode', 'src/cuda']:
    for f in os.listdir(os.path.join(root, d)):
        if f.endswith(('.cu', '.cuh')):
            funcs.setdefault(f, functions(os.path.join(root, d, f)))


def fn(src):
    if not src:
        return '?'
    best = '?'
    for s, n in funcs.get(src[0], []):
        if s <= src[1]:
            best = n
    return f'{src[0]}:{best}'


rows = list(csv.reader(gzip.open(src_csv, 'rt')))
hi = next(i for i, r in enumerate(rows) if any(h.startswith('stall_') for h in r))
hdr, data = rows[hi], rows[hi + 1:]
ix = {h: i for i, h in enumerate(hdr)}


def v(r, h):
    try:
        return float(r[ix[h]])
    except (ValueError, KeyError, IndexError):
        return 0.0


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
