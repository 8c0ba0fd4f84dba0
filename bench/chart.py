#!/usr/bin/env python3
"""Draws the benchmark chart with gnuplot from the JSON lines of a run.

    bench/chart.py RESULTS.jsonl OUT.png

Two panels, one bar per system measured in the run (medians when the run
had several rounds): W1 call latency (p50, p99, p99.9 in microseconds, log
scale) and W3 events per second to one subscriber. Systems missing from a
workload are left out of its panel. Needs gnuplot (Debian: gnuplot-nox)
and the standard library only.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile


def medians(path):
    """{(workload, system, metric): median value} over the file's lines."""
    values = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                r = json.loads(line)
                key = (r["workload"], r["system"], r["metric"])
                values.setdefault(key, []).append(float(r["value"]))
            except (ValueError, KeyError):
                continue
    return {k: statistics.median(v) for k, v in values.items()}


def systems(m, workload, metric):
    """Systems with that metric, ours first, then the peers by name."""
    names = sorted({s for (w, s, k) in m if w == workload and k == metric})
    return sorted(names, key=lambda s: (not s.startswith("svccomm"), s))


def main():
    if len(sys.argv) != 3:
        print("usage: chart.py RESULTS.jsonl OUT.png", file=sys.stderr)
        return 2
    src, out = sys.argv[1], sys.argv[2]
    m = medians(src)
    w1 = systems(m, "W1", "p50_us")
    w3 = systems(m, "W3", "msgs_per_s")
    if not w1 and not w3:
        print("chart.py: no W1 or W3 figures in %s" % src, file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        d1 = os.path.join(tmp, "w1.dat")
        d3 = os.path.join(tmp, "w3.dat")
        with open(d1, "w", encoding="utf-8") as f:
            for s in w1:
                f.write('"%s" %g %g %g\n' % (
                    s, m.get(("W1", s, "p50_us"), 0),
                    m.get(("W1", s, "p99_us"), 0),
                    m.get(("W1", s, "p999_us"), 0)))
        with open(d3, "w", encoding="utf-8") as f:
            for s in w3:
                f.write('"%s" %g\n' % (s, m[("W3", s, "msgs_per_s")] / 1e6))
        script = """
set terminal pngcairo size 1100,420 font ",10"
set output "%(out)s"
set multiplot layout 1,2 title "%(title)s"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set xtics rotate by -30 noenhanced
set grid ytics
set key top left
set title "W1 call latency, one call at a time (us, lower is better)"
set logscale y
%(w1plot)s
unset logscale y
set title "W3 events/s to one subscriber (millions, higher is better)"
unset key
%(w3plot)s
unset multiplot
""" % {
            "out": out,
            "title": "libsvccomm beside the reference systems, same run (%s)"
            % os.path.basename(src),
            "w1plot": ('plot "%s" using 2:xtic(1) title "p50", '
                       '"" using 3 title "p99", "" using 4 title "p99.9"' % d1)
            if w1 else "",
            "w3plot": ('plot "%s" using 2:xtic(1) notitle' % d3) if w3 else "",
        }
        gp = os.path.join(tmp, "chart.gp")
        with open(gp, "w", encoding="utf-8") as f:
            f.write(script)
        try:
            subprocess.run(["gnuplot", gp], check=True)
        except FileNotFoundError:
            print("chart.py: gnuplot not found (Debian: gnuplot-nox)",
                  file=sys.stderr)
            return 1
        except subprocess.CalledProcessError as e:
            print("chart.py: gnuplot failed (%d)" % e.returncode,
                  file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
