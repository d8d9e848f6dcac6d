#!/usr/bin/env python3
"""Benchmark `tidings build` on generated stores, with Hugo (the peer named in the issue) in the same run.

    bench/build.py [--sizes 1000,10000] [--runs 5] [--no-hugo] [--tidings target/release/tidings]

For each size it generates a store with ../shared/corpus/gen-corpus.py (seed 42, cached under /tmp/tidings-bench),
then times, each --runs times:
  tidings cold    `tidings build` into an empty output folder (every file written)
  tidings warm    `tidings build` again with nothing changed (every file compared, none written)
  hugo            `hugo` on the same articles as a minimal site with RSS output (20 newest, full content),
                  the peer's own cold build (Debian's hugo package, installed here when missing)
and prints the median wall time, the peak RSS (from /usr/bin/time), and tidings' speed-up over Hugo as a ratio.
It builds tidings in release mode first unless --tidings is given.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
WORK = Path("/tmp/tidings-bench")


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def ensure_tools(want_hugo):
    missing = []
    if not Path("/usr/bin/time").exists():
        missing.append("time")
    if want_hugo and shutil.which("hugo") is None:
        missing.append("hugo")
    try:
        sh(["/usr/bin/python3", "-c", "import numpy"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except subprocess.CalledProcessError:
        missing.append("python3-numpy")
    if missing:
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        sh(sudo + ["apt-get", "update", "-qq"])
        sh(sudo + ["apt-get", "install", "-y", "-qq", *missing], env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def corpus(n):
    out = WORK / f"corpus-{n}"
    if not (out / "topics.json").exists():
        shutil.rmtree(out, ignore_errors=True)
        sh(["/usr/bin/python3", str(SHARED / "corpus/gen-corpus.py"), "--n", str(n), "--out", str(out), "--hugo"])
    return out


def timed(cmd, cwd=None):
    """Wall seconds and peak RSS in MB of one run."""
    start = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd], cwd=cwd, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    if p.returncode != 0:
        sys.exit(f"{cmd} failed:\n{p.stderr[-2000:]}")
    peak_kb = int(p.stderr.strip().splitlines()[-1])
    return wall, peak_kb / 1024


def tidings_config(store, out_dir):
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    cfg = out_dir.parent / "config.toml"
    cfg.write_text(
        f'[site]\ntitle = "Bench"\nbase_url = "https://bench.example.com/"\narticles = "{store / "posts"}"\n'
        f'[feeds]\noutput = "{out_dir}"\nlimit = 20\nfull_content = true\n'
    )
    return cfg


def hugo_site(store):
    site = store / "hugo-site"
    if not (site / "hugo.toml").exists():
        site.mkdir(exist_ok=True)
        (site / "hugo.toml").write_text(
            'baseURL = "https://bench.example.com/"\ntitle = "Bench"\n'
            'disableKinds = ["taxonomy", "term", "sitemap", "robotsTXT", "404"]\n'
            '[outputs]\nhome = ["RSS"]\nsection = ["RSS"]\npage = []\n'
            '[services.rss]\nlimit = 20\n'
        )
        link = site / "content"
        if not link.exists():
            link.symlink_to(store / "content")
        layouts = site / "layouts/_default"
        layouts.mkdir(parents=True, exist_ok=True)
        # Hugo's embedded RSS template puts the summary in <description>; full content is what tidings writes.
        (layouts / "rss.xml").write_text(
            '{{ printf "<?xml version=\\"1.0\\" encoding=\\"utf-8\\"?>" | safeHTML }}\n'
            '<rss version="2.0"><channel><title>{{ .Site.Title }}</title><link>{{ .Permalink }}</link>'
            '{{ range first 20 .Site.RegularPages.ByDate.Reverse }}<item><title>{{ .Title }}</title>'
            '<link>{{ .Permalink }}</link><pubDate>{{ .Date.Format "Mon, 02 Jan 2006 15:04:05 -0700" }}</pubDate>'
            '<guid>{{ .Permalink }}</guid><description>{{ .Content | html }}</description></item>{{ end }}'
            '</channel></rss>\n'
        )
    return site


def median_of(runs, fn):
    results = [fn() for _ in range(runs)]
    return statistics.median(r[0] for r in results), max(r[1] for r in results)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,10000")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--no-hugo", action="store_true")
    ap.add_argument("--tidings")
    args = ap.parse_args()
    ensure_tools(not args.no_hugo)
    tidings = args.tidings
    if not tidings:
        sh(["cargo", "build", "--release", "--quiet"], cwd=ROOT)
        tidings = str(ROOT / "target/release/tidings")
    print(f"machine: {os.cpu_count()} cores, {os.uname().machine}, {os.uname().release}; runs per figure: {args.runs}")
    print(f"{'articles':>9} {'tool':<14} {'median s':>9} {'peak MB':>8}")
    for n in (int(s) for s in args.sizes.split(",")):
        store = corpus(n)
        out = WORK / f"out-{n}" / "public"

        def cold():
            shutil.rmtree(out, ignore_errors=True)
            return timed([tidings, "-q", "--config", str(tidings_config(store, out)), "build"])

        def warm():
            return timed([tidings, "-q", "--config", str(tidings_config(store, out)), "build"])

        t_cold, m_cold = median_of(args.runs, cold)
        t_warm, m_warm = median_of(args.runs, warm)
        print(f"{n:>9} {'tidings cold':<14} {t_cold:>9.3f} {m_cold:>8.0f}")
        print(f"{n:>9} {'tidings warm':<14} {t_warm:>9.3f} {m_warm:>8.0f}")
        if not args.no_hugo:
            site = hugo_site(store)

            def hugo():
                shutil.rmtree(site / "public", ignore_errors=True)
                return timed(["hugo", "--quiet", "--source", str(site)])

            t_hugo, m_hugo = median_of(min(args.runs, 3), hugo)
            print(f"{n:>9} {'hugo':<14} {t_hugo:>9.3f} {m_hugo:>8.0f}   tidings cold is {t_hugo / t_cold:.1f}x faster")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
