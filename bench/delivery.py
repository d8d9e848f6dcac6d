#!/usr/bin/env python3
"""Benchmark digest fan-out: `tidings digest send` to Postfix's C smtp-sink against the Python baseline
(bench/digest_baseline.py: jinja2 + smtplib) rendering the same digest to the same sink, in the same run.

    bench/delivery.py [--sizes 10000,100000] [--runs 3] [--baseline-sizes 10000] [--tidings target/release/tidings]
                      [--concurrency N]

For each size: a fresh state with that many subscribers (imported, not timed), the sample site's articles, then
`tidings digest send` timed with /usr/bin/time (wall, peak RSS), --runs times, median reported. The baseline runs
after each tidings run (median reported) at --baseline-sizes only (its rate does not depend on the list's size; at
100k it would take minutes per run).
Needs: ../shared/validators/fast-smtp-sink (downloads postfix's package once), python3-jinja2 (installed here
when missing). Builds tidings in release mode first unless --tidings is given.
"""
import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
WORK = Path("/tmp/tidings-bench-delivery")
NOW = "2026-11-30T09:00:00+01:00"
CONCURRENCY = ""

CONFIG = """
[site]
title = "Bench Blog"
base_url = "https://blog.example.com/"
timezone = "Europe/Berlin"
articles = "articles"

[newsletter]
from = "Bench Blog <news@example.com>"
postal_address = "1 Bench Street"

[[digest]]
name = "weekly"
schedule = "0 8 * * MON"

[mail]
transport = "smtp"
smtp_url = "smtp://127.0.0.1:{port}"
{concurrency}
[state]
database = "state.db"
"""


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_jinja2():
    try:
        sh(["/usr/bin/python3", "-c", "import jinja2"], stderr=subprocess.DEVNULL)
    except subprocess.CalledProcessError:
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        sh(sudo + ["apt-get", "install", "-y", "-qq", "python3-jinja2"], stdout=subprocess.DEVNULL)


def timed(cmd, cwd, env=None):
    """(wall seconds, peak RSS MB, stdout) of cmd under /usr/bin/time."""
    out = subprocess.run(["/usr/bin/time", "-f", "TIME %e %M"] + cmd, cwd=cwd, env=env,
                         capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit("failed: %s\n%s%s" % (" ".join(cmd), out.stdout, out.stderr))
    m = re.search(r"TIME ([\d.]+) (\d+)", out.stderr)
    return float(m.group(1)), int(m.group(2)) / 1024, out.stdout + out.stderr


def world(size, port, tidings):
    d = WORK / str(size)
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    shutil.copytree(ROOT / "tests/fixtures/sample/data/articles", d / "articles")
    (d / "config.toml").write_text(CONFIG.format(port=port, concurrency=CONCURRENCY))
    with open(d / "subscribers.csv", "w") as f:
        f.write("email,name,digests,categories,subscribed_at\n")
        for i in range(size):
            f.write("reader%07d@example.com,Reader %d,weekly,,2026-08-01T00:00:00Z\n" % (i, i))
    sh([tidings, "-q", "subscribers", "import", "subscribers.csv"], cwd=d, env=dict(os.environ, TIDINGS_SECRET="b"))
    sh([tidings, "-q", "--now", NOW, "build"], cwd=d)
    return d


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--baseline-sizes", default="10000")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--tidings")
    ap.add_argument("--concurrency", type=int, help="[mail] concurrency (default: tidings' own, 10)")
    args = ap.parse_args()
    global CONCURRENCY
    if args.concurrency:
        CONCURRENCY = "concurrency = %d\n" % args.concurrency
    tidings = str(Path(args.tidings).resolve()) if args.tidings else None
    if not tidings:
        sh(["cargo", "build", "--release", "--quiet"], cwd=ROOT)
        tidings = str(ROOT / "target/release/tidings")
    ensure_jinja2()
    port = free_port()
    sink = subprocess.Popen([str(SHARED / "validators/fast-smtp-sink"), str(port), "--timeout", "7200"],
                            stderr=subprocess.PIPE, text=True)
    sink.stderr.readline()
    time.sleep(0.5)
    env = dict(os.environ, TIDINGS_SECRET="bench")
    rows = []
    try:
        for size in [int(s) for s in args.sizes.split(",")]:
            walls, rss = [], []
            bwalls, brss = [], []
            for run in range(args.runs):
                d = world(size, port, tidings)
                wall, mb, out = timed([tidings, "--now", NOW, "digest", "send", "weekly"], d, env)
                assert "%d sent, 0 deferred, 0 failed" % size in out, out
                walls.append(wall)
                rss.append(mb)
                print("tidings %d subscribers, run %d: %.2f s, %.0f MB" % (size, run + 1, wall, mb), flush=True)
                # The baseline right after each tidings run (as many runs, median too), so that load from other
                # jobs on the machine hits both alike.
                if str(size) in args.baseline_sizes.split(","):
                    bwall, bmb, bout = timed(["/usr/bin/python3", str(ROOT / "bench/digest_baseline.py"),
                                              str(d / "public/feed.json"), str(d / "subscribers.csv"), str(port)], d)
                    bwalls.append(bwall)
                    brss.append(bmb)
                    print("baseline %d subscribers, run %d: %.2f s, %.0f MB (%s)"
                          % (size, run + 1, bwall, bmb, " ".join(bout.split())), flush=True)
            wall = statistics.median(walls)
            base = (statistics.median(bwalls), max(brss)) if bwalls else None
            rows.append((size, wall, max(rss), base))
    finally:
        sink.terminate()
    print("\n| subscribers | tidings msg/s (median of %d) | tidings peak RSS | baseline msg/s (median) | baseline peak RSS "
          "| ratio tidings/baseline |" % args.runs)
    print("|---:|---:|---:|---:|---:|---:|")
    for size, wall, mb, base in rows:
        if base:
            bwall, bmb = base
            print("| %d | %.0f | %.0f MB | %.0f | %.0f MB | %.1f× |" % (size, size / wall, mb, size / bwall, bmb,
                                                                      (size / wall) / (size / bwall)))
        else:
            print("| %d | %.0f | %.0f MB | — | — | — |" % (size, size / wall, mb))


if __name__ == "__main__":
    main()
