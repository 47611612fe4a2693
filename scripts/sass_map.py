"""sass_map.py — shared by the profile readers (sass_footprint.py,
stall_lines.py): the kernel's SASS offsets mapped to source lines and
functions, and ncu's per-instruction source page (scripts/gpu-profile.sh
writes both)."""
import csv
import gzip
import os
import re

DECODE_KERNEL = '_ZN13md_megakernel16md_decode_kernelILb1ELb1EE'
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')


def offsets_to_lines(sass_lines, prefix=DECODE_KERNEL):
    """{SASS offset: (file, line)} of the kernel whose symbol starts with
    prefix, from `nvdisasm -g -c` output (gzipped)."""
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
    return off2src


def _functions(path):
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


def function_namer():
    """A function (file, line) -> 'file:function' over the CUDA sources."""
    funcs = {}
    for d in ['src/cuda/decode', 'src/cuda']:
        for f in os.listdir(os.path.join(ROOT, d)):
            if f.endswith(('.cu', '.cuh')):
                funcs.setdefault(f, _functions(os.path.join(ROOT, d, f)))

    def fn(src):
        if not src:
            return '?'
        best = '?'
        for s, n in funcs.get(src[0], []):
            if s <= src[1]:
                best = n
        return f'{src[0]}:{best}'
    return fn


def source_page(src_csv):
    """(header, rows, value(row, column) -> float) of
    `ncu --page source --csv --print-source sass` (gzipped)."""
    rows = list(csv.reader(gzip.open(src_csv, 'rt')))
    hi = next(i for i, r in enumerate(rows) if any(h.startswith('stall_') for h in r))
    hdr, data = rows[hi], rows[hi + 1:]
    ix = {h: i for i, h in enumerate(hdr)}

    def v(r, h):
        try:
            return float(r[ix[h]])
        except (ValueError, KeyError, IndexError):
            return 0.0
    return hdr, data, v
