#!/usr/bin/python3
"""Parses feeds with Python's feedparser (a second, independent parser) and prints what it read as JSON,
one object per file: {"path", "bozo", "bozo_exception", "version", "title", "subtitle_shown", "entries": [{"id",
"title", "link", "published", "updated", "summary", "summary_shown", "content"}]}. A `*_shown` value is the text a
reader shows: an HTML value's text (tags dropped, references decoded), a plain-text one as it is. Run with Debian's
/usr/bin/python3 (python3-feedparser).
"""
import json
import sys
import time
from html.parser import HTMLParser

import feedparser


class _Text(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts = []

    def handle_data(self, data):
        self.parts.append(data)


def shown(detail):
    """The text a reader shows for a feedparser text construct (value and type), or None without one."""
    if not detail:
        return None
    if detail.get("type") not in ("text/html", "application/xhtml+xml"):
        return detail.get("value")
    parser = _Text()
    parser.feed(detail.get("value", ""))
    parser.close()
    return "".join(parser.parts)


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
        "subtitle_shown": shown(d.feed.get("subtitle_detail")),
        "entries": [
            {
                "id": e.get("id"),
                "title": e.get("title"),
                "link": e.get("link"),
                "published": iso(e.get("published_parsed")),
                "updated": iso(e.get("updated_parsed")),
                "summary": e.get("summary"),
                "summary_shown": shown(e.get("summary_detail")),
                "content": (e.get("content") or [{}])[0].get("value"),
            }
            for e in d.entries
        ],
    })
json.dump(out, sys.stdout)
