#!/usr/bin/env python3
"""The peers bench/run measures tidings against, and their sites, on a store made by
../shared/corpus/gen-corpus.py (--hugo --jekyll), plus precision@5 of any related-reading output.

    peers.py tidings-config CORPUS OUT_DIR STATE_DB > config.toml
    peers.py hugo-rss-site CORPUS SITE_DIR      # Hugo whose only output is RSS (home + section), 20 newest, full content
    peers.py hugo-pages-site CORPUS SITE_DIR    # the same RSS plus every article's page and the list pages
    peers.py jekyll-site CORPUS SITE_DIR        # Jekyll + jekyll-feed over the corpus' _posts/
    peers.py feedgen CORPUS OUT_DIR             # Python: python-markdown + feedgen, site and category feeds
    peers.py sklearn CORPUS                     # prints one JSON object (time, precision@5)
    peers.py precision-json CORPUS related.json # tidings' public/related.json

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


def tidings_config(corpus, out_dir, state_db):
    # gen-corpus writes authors by name; tidings reads a plain `author:` as a key of [authors].
    authors = gen_corpus_module().AUTHORS
    lines = ["[site]", 'title = "bench"', 'base_url = "https://example.com/"',
             f'articles = "{corpus}/posts"', 'timezone = "UTC"', "",
             "[feeds]", f'output = "{out_dir}"', "limit = 20", "full_content = true", "",
             "[related]", f"count = {K}", "", "[state]", f'database = "{state_db}"', ""]
    for a in authors:
        lines += [f'[authors."{a}"]', f'name = "{a}"', ""]
    print("\n".join(lines))


HUGO_RSS_CONFIG = """baseURL = "https://example.com/"
title = "bench"
disableKinds = ["taxonomy", "term", "sitemap", "robotsTXT", "404"]
[outputs]
home = ["RSS"]
section = ["RSS"]
page = []
[services.rss]
limit = 20
"""

HUGO_PAGES_CONFIG = """baseURL = "https://example.com/"
title = "bench"
disableKinds = ["taxonomy", "term", "sitemap", "robotsTXT", "404"]
[outputs]
home = ["HTML", "RSS"]
section = ["HTML", "RSS"]
page = ["HTML"]
[services.rss]
limit = 20
"""

# Hugo's embedded RSS template puts the summary in <description>; full content is what tidings writes.
HUGO_RSS = (
    '{{ printf "<?xml version=\\"1.0\\" encoding=\\"utf-8\\"?>" | safeHTML }}\n'
    '<rss version="2.0"><channel><title>{{ .Site.Title }}</title><link>{{ .Permalink }}</link>'
    '{{ range first 20 .Site.RegularPages.ByDate.Reverse }}<item><title>{{ .Title }}</title>'
    '<link>{{ .Permalink }}</link><pubDate>{{ .Date.Format "Mon, 02 Jan 2006 15:04:05 -0700" }}</pubDate>'
    '<guid>{{ .Permalink }}</guid><description>{{ .Content | html }}</description></item>{{ end }}'
    '</channel></rss>\n'
)
HUGO_SINGLE = ('<!doctype html><html><head><title>{{ .Title }}</title></head><body><article><h1>{{ .Title }}</h1>'
               '<p>{{ .Date.Format "2006-01-02" }} · {{ .ReadingTime }} min read</p>{{ .Content }}</article></body></html>\n')
HUGO_LIST = ('<!doctype html><html><head><title>{{ .Title }}</title></head><body><ul>'
             '{{ range first 20 .Pages.ByDate.Reverse }}<li><a href="{{ .Permalink }}">{{ .Title }}</a></li>{{ end }}'
             '</ul></body></html>\n')


def hugo_site(corpus, site, config, pages):
    """A Hugo site over the corpus' content/ (a symlink). The RSS-only site ships no single.html: Hugo 0.111
    renders every page when that template exists, even with `page = []`."""
    layouts = os.path.join(site, "layouts", "_default")
    os.makedirs(layouts, exist_ok=True)
    with open(os.path.join(site, "hugo.toml"), "w") as f:
        f.write(config)
    link = os.path.join(site, "content")
    if not os.path.islink(link):
        os.symlink(os.path.join(corpus, "content"), link)
    with open(os.path.join(layouts, "rss.xml"), "w") as f:
        f.write(HUGO_RSS)
    if pages:
        for name, text in [("single.html", HUGO_SINGLE), ("list.html", HUGO_LIST)]:
            with open(os.path.join(layouts, name), "w") as f:
                f.write(text)


JEKYLL_CONFIG = """title: bench
url: "https://example.com"
plugins: [jekyll-feed]
feed:
  posts_limit: 20
  categories: [engineering, databases, devops, security, frontend, rust, python, culture, product, data, networking, releases]
exclude: [posts, content, topics.json, jekyll-site, hugo-rss, hugo-pages]
"""


def jekyll_site(corpus, site):
    """Jekyll's config for the corpus folder as its source (its _posts/); the site is written to SITE_DIR."""
    os.makedirs(site, exist_ok=True)
    with open(os.path.join(site, "_config.yml"), "w") as f:
        f.write(JEKYLL_CONFIG)


def feedgen_peer(corpus, out_dir):
    """What a Python script written the usual way does: read every post, Markdown to HTML with python-markdown,
    then the site feed and one per category, RSS and Atom, 20 newest with full content, with feedgen."""
    import markdown
    from feedgen.feed import FeedGenerator
    from datetime import datetime

    posts = []
    folder = os.path.join(corpus, "posts")
    for name in sorted(os.listdir(folder)):
        with open(os.path.join(folder, name), encoding="utf-8") as f:
            text = f.read()
        m = FRONT.match(text)
        fields = {}
        for line in m.group(1).splitlines():
            key, _, value = line.partition(": ")
            fields[key] = json.loads(value) if value.startswith(('"', "[")) else value
        fields["slug"] = name[:-3]
        fields["html"] = markdown.markdown(text[m.end():], extensions=["fenced_code", "tables"])
        fields["date"] = datetime.fromisoformat(fields["date"])
        posts.append(fields)
    posts.sort(key=lambda p: p["date"], reverse=True)
    groups = {"": posts}
    for p in posts:
        groups.setdefault(f"category/{p.get('category', '')}/", []).append(p)
    for folder, items in groups.items():
        fg = FeedGenerator()
        fg.id(f"https://example.com/{folder}")
        fg.title("bench")
        fg.link(href=f"https://example.com/{folder}", rel="alternate")
        fg.link(href=f"https://example.com/{folder}atom.xml", rel="self")
        fg.description("bench")
        for p in reversed(items[:20]):
            fe = fg.add_entry()
            url = f"https://example.com/{p['slug']}/"
            fe.id(url)
            fe.link(href=url)
            fe.title(p["title"])
            fe.published(p["date"])
            fe.updated(p["date"])
            fe.summary(p.get("summary", ""))
            fe.content(p["html"], type="CDATA")
        path = os.path.join(out_dir, folder)
        os.makedirs(path, exist_ok=True)
        fg.rss_file(os.path.join(path, "rss.xml"))
        fg.atom_file(os.path.join(path, "atom.xml"))


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
    elif command == "hugo-rss-site":
        hugo_site(*args, HUGO_RSS_CONFIG, False)
    elif command == "hugo-pages-site":
        hugo_site(*args, HUGO_PAGES_CONFIG, True)
    elif command == "jekyll-site":
        jekyll_site(*args)
    elif command == "feedgen":
        feedgen_peer(*args)
    elif command == "sklearn":
        sklearn_peer(*args)
    elif command == "precision-json":
        print(precision_json(*args))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
