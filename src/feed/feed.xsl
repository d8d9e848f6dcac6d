<?xml version="1.0" encoding="utf-8"?>
<!--
  tidings feed stylesheet: a browser that opens rss.xml or atom.xml shows this page instead of raw XML.
  Feed readers ignore it. It reads both RSS 2.0 and Atom 1.0.
-->
<xsl:stylesheet version="1.0"
  xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
  xmlns:atom="http://www.w3.org/2005/Atom">
  <xsl:output method="html" encoding="utf-8" indent="yes" doctype-system="about:legacy-compat"/>
  <xsl:variable name="title" select="/rss/channel/title | /atom:feed/atom:title"/>
  <xsl:variable name="self" select="/rss/channel/atom:link[@rel='self']/@href | /atom:feed/atom:link[@rel='self']/@href"/>
  <xsl:template match="/">
    <html lang="en">
      <head>
        <meta charset="utf-8"/>
        <meta name="viewport" content="width=device-width, initial-scale=1"/>
        <title><xsl:value-of select="$title"/> (feed)</title>
        <style>
          body { font: 17px/1.55 system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 42rem; margin: 2rem auto; padding: 0 1rem; color: #1f2328; }
          .hint { background: #fff8c5; border: 1px solid #d4a72c; border-radius: 6px; padding: .8rem 1rem; }
          .hint code { display: block; margin-top: .4rem; padding: .4rem; background: #fff; border: 1px solid #d0d7de; border-radius: 4px; word-break: break-all; }
          h1 { font-size: 1.7rem; margin-bottom: .2rem; }
          article { border-bottom: 1px solid #d0d7de; padding: 1rem 0; }
          article h2 { font-size: 1.2rem; margin: 0 0 .3rem; }
          .meta { color: #59636e; font-size: .9rem; }
          .empty { color: #59636e; font-style: italic; }
          a { color: #0969da; }
        </style>
      </head>
      <body>
        <p class="hint"><strong>This is a web feed.</strong> Copy this URL into your feed reader
          (NetNewsWire, Feedly, Thunderbird, Miniflux…) to get new articles as they are published:
          <code><xsl:value-of select="$self"/></code></p>
        <h1><xsl:value-of select="$title"/></h1>
        <p>
          <xsl:call-template name="text-of-description">
            <xsl:with-param name="html" select="/rss/channel/description"/>
          </xsl:call-template>
          <xsl:value-of select="/atom:feed/atom:subtitle"/>
        </p>
        <xsl:apply-templates select="/rss/channel/item | /atom:feed/atom:entry"/>
        <xsl:if test="not(/rss/channel/item | /atom:feed/atom:entry)">
          <p class="empty">No articles yet. Subscribe now: new ones will show up in your reader as they are published.</p>
        </xsl:if>
      </body>
    </html>
  </xsl:template>
  <xsl:template match="item">
    <article>
      <h2><a href="{link}"><xsl:value-of select="title"/></a></h2>
      <p class="meta"><xsl:value-of select="pubDate"/><xsl:if test="category"> · <xsl:value-of select="category[1]"/></xsl:if></p>
      <p>
        <xsl:call-template name="text-of-description">
          <xsl:with-param name="html" select="description"/>
        </xsl:call-template>
      </p>
    </article>
  </xsl:template>
  <xsl:template match="atom:entry">
    <article>
      <h2><a href="{atom:link[@rel='alternate']/@href}"><xsl:value-of select="atom:title"/></a></h2>
      <p class="meta"><xsl:value-of select="substring(atom:published, 1, 10)"/><xsl:if test="atom:category"> · <xsl:value-of select="atom:category[1]/@term"/></xsl:if></p>
      <p>
        <xsl:choose>
          <xsl:when test="atom:summary/@type = 'html'">
            <xsl:call-template name="text-of-description">
              <xsl:with-param name="html" select="atom:summary"/>
            </xsl:call-template>
          </xsl:when>
          <xsl:otherwise><xsl:value-of select="atom:summary"/></xsl:otherwise>
        </xsl:choose>
      </p>
    </article>
  </xsl:template>
  <!--
    An RSS description is HTML (tidings writes its plain-text summary HTML-escaped, so readers show it as written;
    a summary written in Markdown is its HTML, as is an Atom summary of type "html"); this shows it as text: its
    tags dropped (a "<" in the text is escaped, so every "<" left opens a tag), then the references the escaping
    makes decoded, in one pass so that an escaped "&amp;lt;" gives "&lt;". Not disable-output-escaping: Firefox
    ignores it.
  -->
  <xsl:template name="text-of-description">
    <xsl:param name="html"/>
    <xsl:choose>
      <xsl:when test="contains($html, '&lt;')">
        <xsl:call-template name="text-of-description">
          <xsl:with-param name="html" select="substring-before($html, '&lt;')"/>
        </xsl:call-template>
        <xsl:call-template name="text-of-description">
          <xsl:with-param name="html" select="substring-after(substring-after($html, '&lt;'), '&gt;')"/>
        </xsl:call-template>
      </xsl:when>
      <xsl:otherwise>
        <xsl:call-template name="decoded">
          <xsl:with-param name="html" select="$html"/>
        </xsl:call-template>
      </xsl:otherwise>
    </xsl:choose>
  </xsl:template>
  <xsl:template name="decoded">
    <xsl:param name="html"/>
    <xsl:choose>
      <xsl:when test="contains($html, '&amp;')">
        <xsl:variable name="rest" select="substring-after($html, '&amp;')"/>
        <xsl:value-of select="substring-before($html, '&amp;')"/>
        <xsl:choose>
          <xsl:when test="starts-with($rest, 'amp;')">&amp;<xsl:call-template name="decoded"><xsl:with-param name="html" select="substring($rest, 5)"/></xsl:call-template></xsl:when>
          <xsl:when test="starts-with($rest, 'lt;')">&lt;<xsl:call-template name="decoded"><xsl:with-param name="html" select="substring($rest, 4)"/></xsl:call-template></xsl:when>
          <xsl:when test="starts-with($rest, 'gt;')">&gt;<xsl:call-template name="decoded"><xsl:with-param name="html" select="substring($rest, 4)"/></xsl:call-template></xsl:when>
          <xsl:when test="starts-with($rest, 'quot;')">"<xsl:call-template name="decoded"><xsl:with-param name="html" select="substring($rest, 6)"/></xsl:call-template></xsl:when>
          <xsl:when test="starts-with($rest, '#39;')">'<xsl:call-template name="decoded"><xsl:with-param name="html" select="substring($rest, 5)"/></xsl:call-template></xsl:when>
          <xsl:otherwise>&amp;<xsl:call-template name="decoded"><xsl:with-param name="html" select="$rest"/></xsl:call-template></xsl:otherwise>
        </xsl:choose>
      </xsl:when>
      <xsl:otherwise><xsl:value-of select="$html"/></xsl:otherwise>
    </xsl:choose>
  </xsl:template>
</xsl:stylesheet>
