#!/usr/bin/env python3
"""Benchmark the PostgreSQL ledger: N subscribers' digest sent by 1, 2 and 3 replicas sharing one PostgreSQL state,
to Postfix's C smtp-sink, and the SQLite ledger on the same list for comparison, in the same run.

    bench/replicas.py [--subscribers 20000] [--replicas 1,2,3] [--runs 3] [--tidings target/release/tidings]
    bench/replicas.py --simulate 1000000 [--tidings …]

A replica here is one `tidings digest send weekly` process; K of them start together on one state, so they race
to plan the tick (one run; the others join it) and then share its deliveries through claims (FOR UPDATE SKIP
LOCKED). Reported: wall time from the start until the last replica exits (planning included), messages per second,
and each replica's peak RSS. The PostgreSQL cluster is a throwaway one (scripts/postgres) with fsync ON, so every
commit costs what it costs on a real server's disk.

--simulate N: one replica, N subscribers: import time, planning time (from tidings' log), send rate, database size
and peak RSS.

Needs: ../shared/validators/fast-smtp-sink, PostgreSQL (scripts/postgres installs it when missing).
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
WORK = Path("/tmp/tidings-bench-replicas")
NOW = "2026-11-30T09:00:00+01:00"

# The store, config and helpers of the delivery benchmark (same site, same digest, same sink).
from delivery import CONFIG, free_port, sh  # noqa: E402


def psql(url, sql):
    return sh(["psql", url, "-Atq", "-c", sql], capture_output=True, text=True).stdout.strip()


def fresh_database(server, name):
    """A URL to a new, empty database `name` on the server (dropped first if there)."""
    psql(server, "DROP DATABASE IF EXISTS %s" % name)
    psql(server, "CREATE DATABASE %s" % name)
    return server.rsplit("/", 1)[0] + "/" + name


def world(d, size, port, tidings, state):
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    shutil.copytree(ROOT / "tests/fixtures/sample/data/articles", d / "articles")
    (d / "config.toml").write_text(CONFIG.format(port=port, concurrency=""))
    with open(d / "subscribers.csv", "w") as f:
        f.write("email,name,digests,categories,subscribed_at\n")
        for i in range(size):
            f.write("reader%07d@example.com,Reader %d,weekly,,2026-08-01T00:00:00Z\n" % (i, i))
    env = dict(os.environ, TIDINGS_SECRET="bench", TIDINGS_STATE_DATABASE=state)
    started = time.monotonic()
    sh([tidings, "-q", "subscribers", "import", "subscribers.csv"], cwd=d, env=env)
    imported = time.monotonic() - started
    sh([tidings, "-q", "--now", NOW, "build"], cwd=d, env=env)
    return env, imported


def replicas(d, k, tidings, env):
    """Starts k `digest send` processes at once; (wall s, [peak RSS MB], [stderr])."""
    started = time.monotonic()
    procs = [subprocess.Popen(["/usr/bin/time", "-f", "TIME %e %M", tidings, "--now", NOW, "digest", "send",
                               "weekly"], cwd=d, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(k)]
    outs = [p.communicate() for p in procs]
    wall = time.monotonic() - started
    for p, (out, err) in zip(procs, outs):
        if p.returncode != 0:
            sys.exit("a replica failed:\n%s%s" % (out, err))
    rss = [int(re.search(r"TIME [\d.]+ (\d+)", err).group(1)) / 1024 for _, err in outs]
    return wall, rss, [out + err for out, err in outs]


def sent_in(state_env, d, tidings, size):
    runs = json.loads(sh([tidings, "digest", "runs", "--format", "json"], cwd=d, env=state_env,
                         capture_output=True, text=True).stdout)
    assert len(runs) == 1, runs
    assert runs[0]["deliveries"]["sent"] == size, runs
    assert runs[0]["finished"], runs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--subscribers", type=int, default=20000)
    ap.add_argument("--replicas", default="1,2,3")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--simulate", type=int)
    ap.add_argument("--tidings")
    args = ap.parse_args()
    tidings = str(Path(args.tidings).resolve()) if args.tidings else None
    if not tidings:
        sh(["cargo", "build", "--release", "--quiet"], cwd=ROOT)
        tidings = str(ROOT / "target/release/tidings")
    WORK.mkdir(parents=True, exist_ok=True)
    pg_dir = WORK / "pg"
    sh([str(ROOT / "scripts/postgres"), "stop", str(pg_dir)])
    server = sh([str(ROOT / "scripts/postgres"), "start", str(pg_dir)], capture_output=True, text=True,
                env=dict(os.environ, PG_FSYNC="on")).stdout.strip()
    port = free_port()
    sink = subprocess.Popen([str(SHARED / "validators/fast-smtp-sink"), str(port), "--timeout", "7200"],
                            stderr=subprocess.PIPE, text=True)
    sink.stderr.readline()
    time.sleep(0.5)
    try:
        if args.simulate:
            simulate(args.simulate, server, port, tidings)
        else:
            compare(args, server, port, tidings)
    finally:
        sink.terminate()
        sh([str(ROOT / "scripts/postgres"), "stop", str(pg_dir)])


def compare(args, server, port, tidings):
    size = args.subscribers
    rows = {}
    for run in range(args.runs):
        # SQLite first, as the reference: one process (a second one would only wait on its write lock).
        configs = [("sqlite", 1)] + [("postgres", int(k)) for k in args.replicas.split(",")]
        for backend, k in configs:
            d = WORK / ("%s-%d" % (backend, k))
            state = "state.db" if backend == "sqlite" else fresh_database(server, "bench_%d" % k)
            env, _ = world(d, size, port, tidings, state)
            wall, rss, outs = replicas(d, k, tidings, env)
            sent_in(env, d, tidings, size)
            rows.setdefault((backend, k), []).append((wall, max(rss)))
            print("%s, %d replica(s), run %d: %.2f s, %.0f msg/s, peak RSS per replica %s MB"
                  % (backend, k, run + 1, wall, size / wall, "/".join("%.0f" % r for r in rss)), flush=True)
    print("\n| state | replicas | wall (median of %d) | msg/s | peak RSS per replica |" % args.runs)
    print("|---|---:|---:|---:|---:|")
    for (backend, k), results in rows.items():
        wall = statistics.median(w for w, _ in results)
        print("| %s | %d | %.2f s | %.0f | %.0f MB |" % (backend, k, wall, size / wall,
                                                         max(r for _, r in results)))


def simulate(size, server, port, tidings):
    d = WORK / "simulate"
    url = fresh_database(server, "bench_simulate")
    env, imported = world(d, size, port, tidings, url)
    print("imported %d subscribers in %.1f s" % (size, imported), flush=True)
    wall, rss, outs = replicas(d, 1, tidings, env)
    sent_in(env, d, tidings, size)
    planned = re.search(r"planned: (\d+) deliveries written in ([\d.]+) s", outs[0])
    size_mb = int(psql(url, "SELECT pg_database_size(current_database())")) / 1e6
    print("| subscribers | import | planning | send (plan included) | msg/s | database size | peak RSS |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    print("| %d | %.1f s | %s s | %.1f s | %.0f | %.0f MB | %.0f MB |"
          % (size, imported, planned.group(2) if planned else "?", wall, size / wall, size_mb, rss[0]))


if __name__ == "__main__":
    main()
