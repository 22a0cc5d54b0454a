"""Markdown in suite text (descriptions, notes, protocol descriptions) rendered for the site with markdown-it-py
(CommonMark), escaped: raw HTML is never passed through (``html: False`` prints it as text) and markdown-it's
link check drops ``javascript:``, ``vbscript:``, ``file:`` and non-image ``data:`` links. Inline only (code
spans, emphasis, links): the text sits inside a paragraph or a table cell of the page."""

from __future__ import annotations

from functools import lru_cache

from markupsafe import Markup


@lru_cache(maxsize=1)
def _parser():
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})


def md_inline(text) -> Markup:
    """``text`` (Markdown) as inline HTML, every character of it escaped except the markup Markdown makes."""
    if text is None:
        return Markup("")
    return Markup(_parser().renderInline(str(text)).strip())
