#!/usr/bin/python3
"""Parses feeds with Python's feedparser (a second, independent parser) and prints what it read as JSON,
one object per file: {"path", "bozo", "bozo_exception", "version", "title", "entries": [{"id", "title",
"link", "published", "updated", "summary", "content"}]}. Run with Debian's /usr/bin/python3 (python3-feedparser).
"""
import json
import sys
import time

import feedparser


def iso(struct):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", struct) if struct else None


out = []
for path in sys.argv[1:]:
    d = feedparser.parse(path)
    out.append({
        "path": path,
        "bozo": int(d.bozo),
        "bozo_exception": str(d.get("bozo_exception", "")),
        "version": d.version,
        "title": d.feed.get("title"),
        "entries": [
            {
                "id": e.get("id"),
                "title": e.get("title"),
                "link": e.get("link"),
                "published": iso(e.get("published_parsed")),
                "updated": iso(e.get("updated_parsed")),
                "summary": e.get("summary"),
                "content": (e.get("content") or [{}])[0].get("value"),
            }
            for e in d.entries
        ],
    })
json.dump(out, sys.stdout)
