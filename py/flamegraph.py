#!/usr/bin/python3
"""Flame graphs from `perf script` output, with Debian's python3 alone (Debian 12 has no
flamegraph package): folds each sampled call stack into one "root;...;leaf count" line, merges
them into a tree and draws it as an SVG in which each frame's width is its share of the samples
(click a frame to zoom into it, hover for its numbers). scripts/flamegraph.sh runs perf and this.

  perf script -i perf.data | py/flamegraph.py --title "sg-edge" > flame.svg
  py/flamegraph.py --folded-out stacks.txt perf.txt > flame.svg   # also keep the folded stacks
  py/flamegraph.py stacks.txt > flame.svg                          # folded input works too

Prints the functions with the most samples on top of the stack (self time) to stderr."""
import argparse
import html
import re
import sys
import zlib

FRAME_LINE = re.compile(r"^\s+([0-9a-fA-F]+)\s+(.*?)\s+\((.*)\)\s*$")
OFFSET = re.compile(r"\+0x[0-9a-fA-F]+$")
FOLDED_LINE = re.compile(r"^(.*\S)\s+(\d+)$")


def frame_name(sym, dso):
    """A frame's label: the symbol without its offset; the library when perf has no symbol;
    kernel frames marked [k] (they colour differently)."""
    sym = OFFSET.sub("", sym.strip())
    if sym in ("", "[unknown]"):
        base = dso.rsplit("/", 1)[-1] if dso and dso != "[unknown]" else "unknown"
        sym = "[%s]" % base.strip("[]")
    if dso.startswith("[kernel"):
        sym += " [k]"
    return sym.replace(";", ":")  # ';' separates the folded frames


def fold_perf_script(lines):
    """perf script text -> {"comm;outer;...;leaf": samples}. A sample is a header line (the
    thread's command name first) then its frames, innermost first, then a blank line."""
    stacks = {}
    comm, frames = None, []

    def flush():
        if comm is not None:
            key = ";".join([comm] + frames[::-1])
            stacks[key] = stacks.get(key, 0) + 1

    for line in lines:
        if not line.strip():
            flush()
            comm, frames = None, []
        elif line[0] in " \t":
            m = FRAME_LINE.match(line)
            if m and comm is not None:
                frames.append(frame_name(m.group(2), m.group(3)))
        else:
            flush()
            comm, frames = line.split(None, 1)[0], []
    flush()
    return stacks


def read_stacks(lines):
    """Folded stacks if every non-empty line is "a;b;c N", else perf script output."""
    body = [l for l in lines if l.strip()]
    folded = {}
    for l in body:
        m = FOLDED_LINE.match(l.rstrip("\n"))
        if not m or l[0] in " \t":
            return fold_perf_script(lines)
        folded[m.group(1)] = folded.get(m.group(1), 0) + int(m.group(2))
    return folded


class Node:
    __slots__ = ("name", "value", "children")

    def __init__(self, name):
        self.name, self.value, self.children = name, 0, {}


def build_tree(stacks):
    root = Node("all")
    for stack, n in stacks.items():
        root.value += n
        node = root
        for name in stack.split(";"):
            node = node.children.setdefault(name, Node(name))
            node.value += n
    return root


def self_times(stacks):
    """Samples per function at the top of the stack."""
    out = {}
    for stack, n in stacks.items():
        leaf = stack.rsplit(";", 1)[-1]
        out[leaf] = out.get(leaf, 0) + n
    return sorted(out.items(), key=lambda kv: -kv[1])


def colour(name):
    """A stable warm colour per name (the same function has the same colour in every graph);
    kernel frames orange-brown, unknown ones grey."""
    h = zlib.crc32(name.encode())
    if name.endswith(" [k]"):
        return "rgb(%d,%d,%d)" % (200 + h % 40, 120 + (h >> 8) % 40, 60)
    if name.startswith("["):
        return "rgb(%d,%d,%d)" % ((160 + h % 30,) * 3)
    return "rgb(%d,%d,%d)" % (205 + h % 50, 80 + (h >> 8) % 130, 40 + (h >> 16) % 40)


SCRIPT = """
<![CDATA[
// Click a frame to zoom into it (its ancestors stay full width), click "Reset zoom" to go back.
var svg = document.documentElement, W = +svg.getAttribute('data-width'), PAD = 10;
function frames() { return svg.querySelectorAll('g.f'); }
function fit(g, x, w) {
  var r = g.querySelector('rect'), t = g.querySelector('text'), name = g.getAttribute('data-name');
  if (w < 0.5) { g.style.display = 'none'; return; }
  g.style.display = '';
  r.setAttribute('x', x); r.setAttribute('width', w); t.setAttribute('x', x + 3);
  var n = Math.floor((w - 6) / 7);
  t.textContent = n < 3 ? '' : (name.length <= n ? name : name.slice(0, n - 2) + '..');
}
function zoom(target) {
  var x0 = +target.getAttribute('data-x'), w0 = +target.getAttribute('data-w');
  var d0 = +target.getAttribute('data-depth'), s = (W - 2 * PAD) / w0;
  frames().forEach(function (g) {
    var x = +g.getAttribute('data-x'), w = +g.getAttribute('data-w'), d = +g.getAttribute('data-depth');
    if (d < d0) { var inside = x <= x0 && x + w >= x0 + w0;
      inside ? fit(g, PAD, W - 2 * PAD) : fit(g, 0, 0); return; }
    if (x < x0 || x + w > x0 + w0 + 1e-6) { fit(g, 0, 0); return; }
    fit(g, PAD + (x - x0) * s, w * s);
  });
  document.getElementById('reset').style.opacity = 1;
}
function reset() {
  frames().forEach(function (g) { fit(g, +g.getAttribute('data-x'), +g.getAttribute('data-w')); });
  document.getElementById('reset').style.opacity = 0.1;
}
frames().forEach(function (g) { g.addEventListener('click', function () { zoom(g); }); });
document.getElementById('reset').addEventListener('click', reset);
]]>
"""


def render_svg(root, title, subtitle, width=1200, frame_h=16, min_px=0.3):
    """The tree as an SVG flame graph: the root at the bottom, callees above their callers,
    siblings in alphabetical order (so the same code path sits at the same place in every
    graph), widths in proportion to samples. Frames under min_px wide are left out."""
    pad, top = 10, 50
    total = root.value or 1
    scale = (width - 2 * pad) / total
    rects, depth_max = [], 0

    def walk(node, x, depth):
        nonlocal depth_max
        w = node.value * scale
        if w < min_px:
            return
        depth_max = max(depth_max, depth)
        rects.append((node, x, w, depth))
        cx = x
        for name in sorted(node.children):
            child = node.children[name]
            walk(child, cx, depth + 1)
            cx += child.value * scale

    walk(root, pad, 0)
    height = top + (depth_max + 1) * frame_h + 30
    out = [
        '<?xml version="1.0" standalone="no"?>',
        '<svg version="1.1" xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
        'viewBox="0 0 %d %d" data-width="%d" font-family="Verdana, sans-serif" font-size="12">'
        % (width, height, width, height, width),
        '<rect x="0" y="0" width="%d" height="%d" fill="#f8f8f0"/>' % (width, height),
        '<text x="%d" y="22" text-anchor="middle" font-size="17">%s</text>' % (width // 2, html.escape(title)),
        '<text x="%d" y="40" text-anchor="middle" fill="#555">%s</text>' % (width // 2, html.escape(subtitle)),
        '<text id="reset" x="%d" y="22" style="opacity:0.1;cursor:pointer">Reset zoom</text>' % pad,
    ]
    for node, x, w, depth in rects:
        y = height - 30 - (depth + 1) * frame_h
        pct = 100.0 * node.value / total
        name = node.name
        n = int((w - 6) / 7)
        label = "" if n < 3 else (name if len(name) <= n else name[: n - 2] + "..")
        out.append(
            '<g class="f" data-name="%s" data-x="%.2f" data-w="%.2f" data-depth="%d" style="cursor:pointer">'
            "<title>%s (%d samples, %.2f%%)</title>"
            '<rect x="%.2f" y="%d" width="%.2f" height="%d" fill="%s" rx="2"/>'
            '<text x="%.2f" y="%d">%s</text></g>'
            % (html.escape(name, quote=True), x, w, depth, html.escape(name), node.value, pct,
               x, y, w, frame_h - 1, colour(name), x + 3, y + frame_h - 4, html.escape(label))
        )
    out.append('<script type="text/ecmascript">%s</script>' % SCRIPT)
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("input", nargs="?", help="perf script output or folded stacks (default stdin)")
    ap.add_argument("--title", default="Flame graph")
    ap.add_argument("--subtitle", default=None, help="default: the number of samples")
    ap.add_argument("--width", type=int, default=1200)
    ap.add_argument("--folded-out", help="also write the folded stacks to this file")
    ap.add_argument("--top", type=int, default=15, help="self-time lines on stderr (0: none)")
    a = ap.parse_args()
    f = open(a.input, errors="replace") if a.input else sys.stdin
    stacks = read_stacks(f.readlines())
    if not stacks:
        print("flamegraph.py: no samples in the input", file=sys.stderr)
        return 1
    if a.folded_out:
        with open(a.folded_out, "w") as out:
            for k in sorted(stacks):
                out.write("%s %d\n" % (k, stacks[k]))
    root = build_tree(stacks)
    sub = a.subtitle if a.subtitle is not None else "%d samples" % root.value
    sys.stdout.write(render_svg(root, a.title, sub, a.width))
    for name, n in self_times(stacks)[: a.top]:
        print("%6.2f%%  %6d  %s" % (100.0 * n / root.value, n, name), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
