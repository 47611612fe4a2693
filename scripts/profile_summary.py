#!/usr/bin/env python3
"""profile_summary.py DIR — summarise scripts/gpu-profile.sh output: warp
stall reasons over the whole kernel (share of samples), then the SASS regions
(blocks of N instructions) that take the most samples, with their instruction
mix and top stall reasons. Usage: profile_summary.py DIR [block]"""
import collections, csv, gzip, sys

d = sys.argv[1] if len(sys.argv) > 1 else '.'
B = int(sys.argv[2]) if len(sys.argv) > 2 else 200
rows = list(csv.reader(gzip.open(f'{d}/source.csv.gz', 'rt')))
hi = next(i for i, r in enumerate(rows) if any(h.startswith('stall_') for h in r))
hdr, data = rows[hi], rows[hi + 1:]
ix = {h: i for i, h in enumerate(hdr)}
reasons = [h for h in hdr if h.startswith('stall_') and 'Not Issued' not in h]
src = ix.get('Source', 1)


def val(r, h):
    try:
        return int(float(r[ix[h]]))
    except (ValueError, KeyError, IndexError):
        return 0


tot = collections.Counter()
for r in data:
    for h in reasons:
        tot[h[6:]] += val(r, h)
S = sum(tot.values()) or 1
print(f'{len(data)} SASS instructions, {S} stall samples')
for h, v in tot.most_common(12):
    print(f'  {h:26s} {v:9d} {100 * v / S:5.1f}%')
print(f'\nregions of {B} instructions with >= 1% of the samples:')
for b0 in range(0, len(data), B):
    blk = data[b0:b0 + B]
    st = collections.Counter()
    for r in blk:
        for h in reasons:
            st[h[6:]] += val(r, h)
    s = sum(st.values())
    if s < S / 100:
        continue
    ops = collections.Counter()
    for r in blk:
        t = r[src].split()
        if t and t[0].startswith('@'):
            t = t[1:]
        if t:
            ops[t[0].split('.')[0]] += 1
    ex = max(val(r, 'Instructions Executed') for r in blk)
    mix = ' '.join(f'{k}:{ops[k]}' for k in ('FFMA', 'LDS', 'LDG', 'STG', 'SHFL', 'SYNCS', 'BAR') if ops[k])
    top = ', '.join(f'{k}:{100 * v / S:.1f}%' for k, v in st.most_common(3))
    print(f'{b0:6d} {100 * s / S:5.1f}% maxexec {ex:8d} {mix:40s} | {top}')
