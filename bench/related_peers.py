#!/usr/bin/env python3
"""Helpers for bench/related.sh: the scikit-learn peer, precision@5 of any related-reading output, and the
configs for tidings and Hugo on a store made by ../shared/corpus/gen-corpus.py.

    related_peers.py tidings-config CORPUS OUT_DIR > config.toml
    related_peers.py hugo-site CORPUS SITE_DIR
    related_peers.py sklearn CORPUS                     # prints one JSON object (time, precision@5)
    related_peers.py precision-json CORPUS related.json # tidings' public/related.json
    related_peers.py precision-hugo CORPUS index.html   # the Hugo site's home page (see hugo-site)

precision@5 = the share of an article's five suggestions that share its topic (topics.json), averaged over
all articles; a missing suggestion counts as a miss, so a peer cannot score well by suggesting less.
"""
import importlib.util
import json
import os
import re
import sys
import time

K = 5


def gen_corpus_module():
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, "..", "..", "shared", "corpus", "gen-corpus.py")
    spec = importlib.util.spec_from_file_location("gen_corpus", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def topics(corpus):
    with open(os.path.join(corpus, "topics.json")) as f:
        return json.load(f)


def precision(truth, lists):
    hits = sum(sum(1 for s in lists.get(slug, [])[:K] if truth.get(s) == t) for slug, t in truth.items())
    return round(hits / (K * len(truth)), 4)


def tidings_config(corpus, out_dir):
    # gen-corpus writes authors by name; tidings reads a plain `author:` as a key of [authors].
    authors = gen_corpus_module().AUTHORS
    lines = ["[site]", 'title = "bench"', 'base_url = "https://example.com/"',
             f'articles = "{corpus}/posts"', 'timezone = "UTC"', "",
             "[feeds]", f'output = "{out_dir}"', "", "[related]", f"count = {K}", ""]
    for a in authors:
        lines += [f'[authors."{a}"]', f'name = "{a}"', ""]
    print("\n".join(lines))


HUGO_CONFIG = """baseURL = "https://example.com/"
title = "bench"
disableKinds = ["taxonomy", "term", "RSS", "sitemap", "robotsTXT", "404", "section"]
[related]
includeNewer = true
threshold = 80
toLower = false
[[related.indices]]
name = "tags"
weight = 100
[[related.indices]]
name = "category"
weight = 20
"""

# One line per article: its slug, then its five related slugs.
HUGO_HOME = """{{ range site.RegularPages }}{{ .File.ContentBaseName }}:{{ range first 5 (site.RegularPages.Related .) }} {{ .File.ContentBaseName }}{{ end }}
{{ end }}"""


def hugo_site(corpus, site):
    os.makedirs(os.path.join(site, "layouts"), exist_ok=True)
    with open(os.path.join(site, "config.toml"), "w") as f:
        # Top-level keys before the first table, or TOML puts them inside it.
        f.write(f'contentDir = "{corpus}/content"\n' + HUGO_CONFIG)
    with open(os.path.join(site, "layouts", "index.html"), "w") as f:
        f.write(HUGO_HOME)


def precision_hugo(corpus, home):
    lists = {}
    with open(home) as f:
        for line in f:
            if ":" in line:
                slug, rest = line.split(":", 1)
                lists[slug.strip()] = rest.split()
    return precision(topics(corpus), lists)


def precision_json(corpus, path):
    with open(path) as f:
        related = json.load(f)
    lists = {slug: [r["slug"] for r in items] for slug, items in related.items()}
    return precision(topics(corpus), lists)


FRONT = re.compile(r"\A---\n(.*?)\n---\n", re.S)


def read_posts(corpus):
    """slug -> title + summary + body, as scikit-learn users feed it (front matter values, raw Markdown)."""
    posts = {}
    folder = os.path.join(corpus, "posts")
    for name in sorted(os.listdir(folder)):
        with open(os.path.join(folder, name), encoding="utf-8") as f:
            text = f.read()
        m = FRONT.match(text)
        fields = {}
        for line in m.group(1).splitlines():
            key, _, value = line.partition(": ")
            fields[key] = json.loads(value) if value.startswith('"') else value
        posts[name[:-3]] = " ".join([fields.get("title", ""), fields.get("summary", ""), text[m.end():]])
    return posts


def sklearn_peer(corpus):
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer

    started = time.perf_counter()
    posts = read_posts(corpus)
    slugs = list(posts)
    read_s = time.perf_counter() - started

    started = time.perf_counter()
    matrix = TfidfVectorizer(stop_words="english").fit_transform(posts[s] for s in slugs)
    lists = {}
    block = 1000
    for lo in range(0, len(slugs), block):
        sims = (matrix[lo:lo + block] @ matrix.T).toarray()
        for i in range(sims.shape[0]):
            sims[i, lo + i] = -1.0  # never itself
        top = np.argpartition(-sims, K, axis=1)[:, :K]
        for i in range(sims.shape[0]):
            order = top[i][np.argsort(-sims[i, top[i]], kind="stable")]
            lists[slugs[lo + i]] = [slugs[j] for j in order]
    related_s = time.perf_counter() - started
    print(json.dumps({"peer": "scikit-learn", "articles": len(slugs), "read_s": round(read_s, 3),
                      "related_s": round(related_s, 3),
                      "precision_at_5": precision(topics(corpus), lists)}))


def main():
    command, args = sys.argv[1], sys.argv[2:]
    if command == "tidings-config":
        tidings_config(*args)
    elif command == "hugo-site":
        hugo_site(*args)
    elif command == "sklearn":
        sklearn_peer(*args)
    elif command == "precision-json":
        print(precision_json(*args))
    elif command == "precision-hugo":
        print(precision_hugo(*args))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
