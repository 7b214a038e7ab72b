#!/usr/bin/python3
"""Tests of py/flamegraph.py (run by ctest as flamegraph_py, with Debian's python3): folding real
`perf script` output of sg-edge (tests/fixtures/perf/sg-edge-script.txt: four samples taken
with --call-graph dwarf, one through the kernel, one through a library without symbols), folded
input, and an SVG that is well-formed XML whose frame widths add up."""
import os
import subprocess
import sys
import unittest
import xml.etree.ElementTree as ET

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "py"))
import flamegraph  # noqa: E402

FIXTURE = os.path.join(ROOT, "tests", "fixtures", "perf", "sg-edge-script.txt")
SVG = "{http://www.w3.org/2000/svg}"


def frames(svg_text):
    doc = ET.fromstring(svg_text)
    out = []
    for g in doc.iter(SVG + "g"):
        if g.get("class") == "f":
            out.append((g.get("data-name"), float(g.get("data-x")), float(g.get("data-w")),
                        int(g.get("data-depth")), g.find(SVG + "title").text))
    return doc, out


class Fold(unittest.TestCase):
    def setUp(self):
        with open(FIXTURE) as f:
            self.stacks = flamegraph.read_stacks(f.readlines())

    def test_samples_and_order(self):
        self.assertEqual(sum(self.stacks.values()), 4)
        self.assertEqual(len(self.stacks), 3)  # the first sample comes twice
        mel = [k for k in self.stacks if k.endswith(";log_mel_run")]
        self.assertEqual(len(mel), 1)
        self.assertEqual(self.stacks[mel[0]], 2)
        # outermost first: the thread's start, then the work queue, then the model
        self.assertTrue(mel[0].startswith("sg-edge;clone3;start_thread;worker_main;run_job;work_audio;"))

    def test_names(self):
        joined = ";".join(self.stacks)
        self.assertIn("tjDecompress2;[libturbojpeg.so.0.2.0]", joined)  # no symbols: the library
        self.assertIn("do_syscall_64 [k]", joined)  # kernel frames are marked
        self.assertIn("lll_mutex_unlock_optimized", joined)  # an inlined frame keeps its name
        self.assertNotIn("+0x", joined)

    def test_offsets_and_unknown(self):
        self.assertEqual(flamegraph.frame_name("foo+0x1a", "/bin/x"), "foo")
        self.assertEqual(flamegraph.frame_name("[unknown]", "/usr/lib/libz.so.1"), "[libz.so.1]")
        self.assertEqual(flamegraph.frame_name("[unknown]", "[unknown]"), "[unknown]")
        self.assertEqual(flamegraph.frame_name("a;b", "/x"), "a:b")

    def test_folded_round_trip(self):
        lines = ["%s %d\n" % (k, v) for k, v in self.stacks.items()]
        self.assertEqual(flamegraph.read_stacks(lines), self.stacks)

    def test_self_times(self):
        top = flamegraph.self_times(self.stacks)
        self.assertEqual(top[0], ("log_mel_run", 2))


class Render(unittest.TestCase):
    def test_svg(self):
        with open(FIXTURE) as f:
            stacks = flamegraph.read_stacks(f.readlines())
        root = flamegraph.build_tree(stacks)
        text = flamegraph.render_svg(root, "t <&>", "s", width=1000)
        doc, fr = frames(text)
        self.assertEqual(doc.get("width"), "1000")
        all_ = [f for f in fr if f[3] == 0]
        self.assertEqual(len(all_), 1)
        self.assertAlmostEqual(all_[0][2], 980, places=1)  # the whole width less the margins
        self.assertIn("(4 samples, 100.00%)", all_[0][4])
        # every frame lies within its parent's span, siblings do not overlap
        by_depth = {}
        for name, x, w, d, _ in fr:
            by_depth.setdefault(d, []).append((x, w, name))
        for d, row in by_depth.items():
            row.sort()
            for (x0, w0, _), (x1, _w1, _) in zip(row, row[1:]):
                self.assertLessEqual(x0 + w0, x1 + 1e-6)
            if d:
                for x, w, name in row:
                    self.assertTrue(any(px - 1e-6 <= x and x + w <= px + pw + 1e-6
                                        for px, pw, _ in by_depth[d - 1]), name)
        mel = [f for f in fr if f[0] == "log_mel_run"]
        self.assertEqual(len(mel), 1)
        self.assertAlmostEqual(mel[0][2], 490, places=1)  # 2 of 4 samples

    def test_escaping(self):
        root = flamegraph.build_tree({"a;std::vector<int>::push_back&\"x\" 1": 3, "a;b": 1})
        doc, fr = frames(flamegraph.render_svg(root, "t", "s"))
        self.assertIn('std::vector<int>::push_back&"x" 1', [f[0] for f in fr])

    def test_narrow_frames_left_out(self):
        stacks = {"a;wide": 100000, "a;narrow": 1}
        _, fr = frames(flamegraph.render_svg(flamegraph.build_tree(stacks), "t", "s", width=600))
        names = [f[0] for f in fr]
        self.assertIn("wide", names)
        self.assertNotIn("narrow", names)


class Cli(unittest.TestCase):
    def run_tool(self, *args, stdin=None):
        return subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "py", "flamegraph.py")] + list(args),
                              input=stdin, capture_output=True, text=True, timeout=60)

    def test_file(self):
        r = self.run_tool("--title", "sg-edge", FIXTURE)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(r.stdout.startswith("<?xml"))
        ET.fromstring(r.stdout)
        self.assertIn("log_mel_run", r.stderr.splitlines()[0])  # the top self time first

    def test_empty_input(self):
        r = self.run_tool(stdin="")
        self.assertEqual(r.returncode, 1)
        self.assertIn("no samples", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=1)
