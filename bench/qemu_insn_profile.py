#!/usr/bin/env python3
"""Per-token profile from two bench/qemu_insn_count.c profiles (one line per block:
"<instructions> <function>") of runs of n1 and n2 tokens: instructions per token by function,
(prof2 - prof1) / (n2 - n1), top `top` functions. A block outside the program is named
"?<library>+0x<file offset>" by the counter; it is named here by the nearest preceding dynamic
symbol of that library (`nm -D`; Debian's libraries have no full symbol table, so an internal
function shows as the exported one before it: "libc.so.6:memcpy~"). Used by bench/arm_insn_count.sh.

usage: qemu_insn_profile.py NM LIBDIR PROF1 PROF2 N1 N2 TOP
"""
import bisect
import collections
import os
import subprocess
import sys

nm, libdir, prof1, prof2 = sys.argv[1:5]
n1, n2, top = int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
symtabs = {}


def lib_symbols(lib):
    if lib not in symtabs:
        addrs, names = [], []
        try:
            out = subprocess.run([nm, "-D", "--defined-only", os.path.join(libdir, lib)],
                                 capture_output=True, text=True, check=True).stdout
        except (OSError, subprocess.CalledProcessError):
            out = ""
        rows = []
        for line in out.splitlines():
            f = line.split()
            if len(f) == 3 and f[1] in "TtWwiI":
                rows.append((int(f[0], 16) & ~1, f[2].split("@")[0]))  # bit 0: Thumb
        rows.sort()
        for a, n in rows:
            addrs.append(a)
            names.append(n)
        symtabs[lib] = (addrs, names)
    return symtabs[lib]


def name(s):
    if s.startswith("?0x"):
        return "(no symbol: dynamic loader, PLT stubs)"
    if not s.startswith("?") or "+0x" not in s:
        return s
    lib, off = s[1:].split("+0x")
    addrs, names = lib_symbols(lib)
    i = bisect.bisect_right(addrs, int(off, 16)) - 1
    return f"{lib}:{names[i]}~" if i >= 0 else f"{lib}:?"


def load(path):
    c = collections.Counter()
    with open(path) as f:
        for line in f:
            n, s = line.rstrip("\n").split(" ", 1)
            c[name(s)] += int(n)
    return c


a, b = load(prof1), load(prof2)
total = sum(b.values()) - sum(a.values())
rows = sorted(((b[k] - a[k]) / (n2 - n1), k) for k in set(a) | set(b))
rows.reverse()
for per_token, k in rows[:top]:
    print(f"  {per_token:>14,.0f}  {100 * per_token * (n2 - n1) / total:5.1f} %  {k}")
