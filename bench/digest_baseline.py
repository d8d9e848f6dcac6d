#!/usr/bin/env python3
"""The baseline for bench/delivery.py: what a newsletter script written the usual way does. It renders the same
digest (the site's newest articles from tidings' own feed.json, each subscriber's name and unsubscribe link) with
jinja2 into HTML and text parts, builds the MIME message with the standard library, and sends it with smtplib over
one reused connection, one subscriber after another.

    digest_baseline.py FEED_JSON SUBSCRIBERS_CSV PORT
Prints "sent N in S seconds".
"""
import csv
import json
import smtplib
import sys
import time
from email.message import EmailMessage

from jinja2 import Environment

HTML = """<!DOCTYPE html><html><body style="margin:0;background:#f3f1ec;font-family:Georgia,serif">
<table width="600" align="center" style="background:#fff;border:1px solid #e4e0d6">
<tr><td style="padding:28px 32px"><p style="font-size:26px;font-weight:bold">{{ site }}</p>
<p style="font-size:14px;color:#5b616b">{{ items|length }} new articles{% if name %} for {{ name }}{% endif %}</p></td></tr>
{% for item in items %}<tr><td style="padding:24px 32px;border-bottom:1px solid #ebe7de">
<h2 style="font-size:21px"><a href="{{ item.url }}" style="color:#1f2328">{{ item.title }}</a></h2>
<p style="font-size:16px;color:#33373d">{{ item.summary }}</p>
<a href="{{ item.url }}" style="color:#b4471f">Read the article</a></td></tr>{% endfor %}
<tr><td style="padding:20px 32px;font-size:12px;color:#767b84">
<p>You are receiving this because you subscribed as {{ email }}.</p>
<p><a href="{{ unsubscribe }}">Unsubscribe</a></p></td></tr></table></body></html>"""

TEXT = """{{ site }}: {{ items|length }} new articles
{% for item in items %}
{{ item.title }}
{{ item.summary }}
{{ item.url }}
{% endfor %}
You are receiving this because you subscribed as {{ email }}.
Unsubscribe: {{ unsubscribe }}
"""


def main():
    feed_path, csv_path, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    feed = json.load(open(feed_path))
    items = [
        {"title": i["title"], "summary": i.get("summary", ""), "url": i["url"]}
        for i in feed["items"][:10]
    ]
    env = Environment(autoescape=True)
    html, text = env.from_string(HTML), Environment().from_string(TEXT)
    subscribers = list(csv.DictReader(open(csv_path)))
    start = time.monotonic()
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        for s in subscribers:
            unsubscribe = "https://example.com/unsubscribe?email=%s&token=x" % s["email"]
            values = dict(site=feed["title"], items=items, name=s["name"], email=s["email"],
                          unsubscribe=unsubscribe)
            msg = EmailMessage()
            msg["From"] = "Bench <news@example.com>"
            msg["To"] = s["email"]
            msg["Subject"] = "%s: %d new articles" % (feed["title"], len(items))
            msg["List-Unsubscribe"] = "<%s>" % unsubscribe
            msg.set_content(text.render(**values))
            msg.add_alternative(html.render(**values), subtype="html")
            smtp.send_message(msg)
    print("sent %d in %.3f seconds" % (len(subscribers), time.monotonic() - start))


if __name__ == "__main__":
    main()
