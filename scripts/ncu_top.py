#!/usr/bin/env python3
"""ncu_top.py FILE.csv.gz [N] — the N SASS instructions with the most stall
samples in an `ncu --page source --csv --print-source sass` export, with
their execution counts and top stall reasons (see scripts/gpu-profile.sh)."""
import csv, gzip, sys

rows = list(csv.reader(gzip.open(sys.argv[1], 'rt')))
N = int(sys.argv[2]) if len(sys.argv) > 2 else 30
hi = next(i for i, r in enumerate(rows) if any(h.startswith('stall_') for h in r))
hdr, data = rows[hi], rows[hi + 1:]
ix = {h: i for i, h in enumerate(hdr)}
reasons = [h for h in hdr if h.startswith('stall_') and 'Not Issued' not in h]


def v(r, h):
    try:
        return int(float(r[ix[h]]))
    except (ValueError, KeyError, IndexError):
        return 0


S = sum(v(r, 'Warp Stall Sampling (All Samples)') for r in data) or 1
top = sorted(range(len(data)), key=lambda i: -v(data[i], 'Warp Stall Sampling (All Samples)'))[:N]
for i in sorted(top):
    r = data[i]
    st = sorted(((v(r, h), h[6:]) for h in reasons), reverse=True)[:2]
    print(f"{i:6d} {100 * v(r, 'Warp Stall Sampling (All Samples)') / S:5.1f}% exec {v(r, 'Instructions Executed'):8d}  {r[ix.get('Source', 1)][:60]:60s} {st}")
