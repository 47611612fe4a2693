#!/usr/bin/env python3
"""stall_lines.py SOURCE_CSV_GZ SASS_LINES_GZ [N] — where the decode kernel's
warps stall, from scripts/gpu-profile.sh's outputs (ncu's per-SASS-instruction
stall samples, nvdisasm's offset -> source line map): the functions and the
source lines with the most samples, and for each the top reasons; then the
lines with the most long-scoreboard (global-load) stalls. With a function's
name as a fourth argument (e.g. md_attention_whole_pv), every line of that
function instead: its SASS instructions, how often they ran, its samples and
their top reasons (session 15 found the attention scores' costs this way). (Session 9 found
the norm weights' first use waiting for their load before any poll this way.)
Samples are averaged over every CTA: a stall on the critical path of a few
CTAs (the attention items) looks small here."""
import collections
import signal
import sys

from sass_map import function_namer, offsets_to_lines, source_page

signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # quiet under `| head`

off2src = offsets_to_lines(sys.argv[2])
fn = function_namer()
hdr, data, v = source_page(sys.argv[1])
N = int(sys.argv[3]) if len(sys.argv) > 3 else 25
FUNC = sys.argv[4] if len(sys.argv) > 4 else None
EXEC = 'Instructions Executed'
reasons = [h for h in hdr if h.startswith('stall_') and 'Not Issued' not in h]
ALL = 'Warp Stall Sampling (All Samples)'

by_fn, by_line = collections.defaultdict(collections.Counter), collections.defaultdict(collections.Counter)
n_sass = collections.Counter()
base = int(data[0][0], 16)
for r in data:
    src = off2src.get(int(r[0], 16) - base)
    n_sass[src] += 1
    for key, table in ((fn(src), by_fn), (src, by_line)):
        table[key]['all'] += v(r, ALL)
        table[key]['exec'] += v(r, EXEC)
        for h in reasons:
            table[key][h[6:]] += v(r, h)
total = sum(c['all'] for c in by_fn.values()) or 1


def show(key, c):
    top = sorted(((c[h[6:]], h[6:]) for h in reasons), reverse=True)[:3]
    print(f"  {key:48s} {100 * c['all'] / total:5.1f}%  " + ' '.join(f'{n} {100 * x / total:.1f}' for x, n in top if x))


print(f'stall samples: {int(total)}')
if FUNC:
    lines = sorted(k for k in by_line if k and fn(k).split(':')[1] == FUNC)
    S = sum(by_line[k]['all'] for k in lines)
    print(f'{FUNC}: {100 * S / total:.2f}% of the samples; per line: SASS instructions, executed, share of the function\'s samples, top reasons')
    for k in lines:
        c = by_line[k]
        top = sorted(((c[h[6:]], h[6:]) for h in reasons), reverse=True)[:3]
        print(f'  {k[0]}:{k[1]:<5d} {n_sass[k]:4d} {int(c["exec"]):10d} {100 * c["all"] / (S or 1):5.1f}%  ' +
              ' '.join(f'{n} {100 * x / (S or 1):.1f}' for x, n in top if x))
    sys.exit(0)
print('functions:')
for k, c in sorted(by_fn.items(), key=lambda x: -x[1]['all'])[:N]:
    show(k, c)
print('lines:')
for k, c in sorted(by_line.items(), key=lambda x: -x[1]['all'])[:N]:
    show(f'{k[0]}:{k[1]} ({fn(k).split(":")[1]})' if k else '?', c)
print('lines by long scoreboard (a global load waited for):')
for k, c in sorted(by_line.items(), key=lambda x: -x[1]['long_sb'])[:12]:
    if k and c['long_sb']:
        print(f'  {k[0]}:{k[1]} ({fn(k).split(":")[1]})  {100 * c["long_sb"] / total:.2f}%')
