"""One report, two renderings: Markdown (report.md, for diffs and GitHub) and one self-contained HTML page
(report.html: figures inlined as SVG, no request leaves the file, readable on a phone, printable).

The report is a list of blocks; each block renders itself both ways, so the two files never disagree. HTML is
written here rather than converted from the Markdown because the page needs what Markdown cannot say: ids on
table rows (a verdict links to the row behind it), figures inlined from their SVG files, and a print style.
Paragraph text is Markdown and goes through mistune for the HTML, with raw HTML escaped (a failure reason
such as ``<class 'X'>`` must print, not become a tag).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from pathlib import Path

import mistune
import pandas as pd

_markdown = mistune.create_markdown(escape=True, plugins=["table"])


@dataclass
class Heading:
    text: str
    level: int = 2
    anchor: str | None = None

    def markdown(self) -> str:
        return f"{'#' * self.level} {self.text}\n"

    def html(self) -> str:
        anchor = f" id='{html.escape(self.anchor)}'" if self.anchor else ""
        return f"<h{self.level}{anchor}>{html.escape(self.text)}</h{self.level}>"


@dataclass
class Text:
    """Markdown text: paragraphs, lists, emphasis, code."""
    markdown_text: str
    css_class: str | None = None

    def markdown(self) -> str:
        return self.markdown_text.rstrip() + "\n"

    def html(self) -> str:
        body = _markdown(self.markdown_text)
        return f"<div class='{self.css_class}'>{body}</div>" if self.css_class else body


@dataclass
class Note(Text):
    """A boxed caveat (Markdown blockquote)."""

    def markdown(self) -> str:
        return "\n".join("> " + line if line else ">" for line in self.markdown_text.strip().splitlines()) + "\n"

    def html(self) -> str:
        return f"<aside class='note'>{_markdown(self.markdown_text)}</aside>"


@dataclass
class Items:
    """A list whose items may carry an anchor (a verdict sentence) and a link to the row behind it."""
    items: list[tuple[str, str | None, str | None]]  # (markdown text, own id, href of the evidence row)
    css_class: str = "items"

    def markdown(self) -> str:
        return "\n".join(f"- {text}" for text, _, _ in self.items) + "\n"

    def html(self) -> str:
        lines = []
        for text, anchor, href in self.items:
            inner = _markdown(text).strip().removeprefix("<p>").removesuffix("</p>")
            link = f" <a class='row-link' href='#{html.escape(href)}'>row&nbsp;↗</a>" if href else ""
            own = f" id='{html.escape(anchor)}'" if anchor else ""
            lines.append(f"<li{own}>{inner}{link}</li>")
        return f"<ul class='{self.css_class}'>{''.join(lines)}</ul>"


@dataclass
class Table:
    """A table of display strings; ``row_ids`` gives each row an id in the page (None: no ids)."""
    frame: pd.DataFrame
    row_ids: list[str] | None = None
    anchor: str | None = None
    numeric: set[str] = field(default_factory=set)  # columns right-aligned

    def markdown(self) -> str:
        if self.frame.empty:
            return "_none_\n"
        cells = lambda values: "| " + " | ".join(str(v).replace("|", "\\|").replace("\n", " ") for v in values) + " |"  # noqa: E731
        lines = [cells(self.frame.columns), "|" + "".join("---:|" if c in self.numeric else "---|"
                                                          for c in self.frame.columns)]
        lines += [cells(row) for row in self.frame.itertuples(index=False)]
        return "\n".join(lines) + "\n"

    def html(self) -> str:
        if self.frame.empty:
            return "<p><em>none</em></p>"
        head = "".join(f"<th scope='col'>{html.escape(str(c))}</th>" for c in self.frame.columns)
        body = []
        for i, row in enumerate(self.frame.itertuples(index=False)):
            own = f" id='{html.escape(self.row_ids[i])}'" if self.row_ids else ""
            tds = "".join(f"<td class='num'>{html.escape(str(v))}</td>" if c in self.numeric
                          else f"<td>{html.escape(str(v))}</td>" for c, v in zip(self.frame.columns, row))
            body.append(f"<tr{own}>{tds}</tr>")
        anchor = f" id='{html.escape(self.anchor)}'" if self.anchor else ""
        return (f"<div class='table-wrap'{anchor}><table><thead><tr>{head}</tr></thead>"
                f"<tbody>{''.join(body)}</tbody></table></div>")


@dataclass
class FigureBlock:
    """A drawn figure (its SVG inlined in the page, linked as a file in the Markdown) or the reason it is not."""
    figure_id: str
    title: str
    caption: str
    svg: Path | None
    reason: str | None = None

    def markdown(self) -> str:
        if self.reason:
            return f"### {self.title}\n\n_Not drawn: {self.reason}._\n"
        return f"### {self.title}\n\n![{self.title}](figures/{self.figure_id}.svg)\n\n_{self.caption}_\n"

    def html(self) -> str:
        title = f"<h3>{html.escape(self.title)}</h3>"
        if self.reason or self.svg is None:
            return (f"<figure id='figure-{self.figure_id}' class='not-drawn'>{title}"
                    f"<p><em>Not drawn: {html.escape(self.reason or 'no figure')}.</em></p></figure>")
        return (f"<figure id='figure-{self.figure_id}'>{title}{inline_svg(self.svg, self.figure_id)}"
                f"<figcaption>{html.escape(self.caption)}</figcaption></figure>")


Block = Heading | Text | Note | Items | Table | FigureBlock

_PROLOGUE = re.compile(r"^.*?(?=<svg)", re.S)
_METADATA = re.compile(r"<metadata>.*?</metadata>", re.S)
_IDS = re.compile(r"""(\bid=")([^"]+)(")""")
_REFS = re.compile(r"""((?:xlink:)?href="#|url\(#)([^")]+)""")


def inline_svg(path: Path, prefix: str) -> str:
    """The SVG file as markup for an HTML page: without its XML prologue, DOCTYPE and metadata, and with its ids
    (glyphs, clip paths) prefixed by the figure id, since several figures share a page and matplotlib reuses
    names such as the glyph ids."""
    text = _METADATA.sub("", _PROLOGUE.sub("", path.read_text(encoding="utf-8"), count=1))
    text = _IDS.sub(lambda m: f"{m.group(1)}{prefix}-{m.group(2)}{m.group(3)}", text)
    text = _REFS.sub(lambda m: f"{m.group(1)}{prefix}-{m.group(2)}", text)
    return text.replace("<svg ", f"<svg role='img' aria-label='{html.escape(prefix)}' ", 1)


STYLE = """
:root{--fg:#1f2328;--muted:#59636e;--rule:#d1d9e0;--bg-soft:#f6f8fa;--accent:#0b5cad}
*{box-sizing:border-box}
body{font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);max-width:72rem;
 margin:0 auto;padding:1rem}
h1{font-size:1.6rem;margin:.2rem 0 .6rem}h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid var(--rule)}
h3{font-size:1.05rem}
.lede{font-size:1.05rem}
.small{font-size:.85rem;color:var(--muted)}
.table-wrap{overflow-x:auto;-webkit-overflow-scrolling:touch;margin:.8rem 0}
table{border-collapse:collapse;font-size:.82rem;font-variant-numeric:tabular-nums}
th,td{border:1px solid var(--rule);padding:.3rem .5rem;vertical-align:top}
th{background:var(--bg-soft);text-align:left;position:sticky;top:0}
td.num{text-align:right;white-space:nowrap}
tr:target{background:#fff3bf;outline:2px solid #f0b400}
li:target{background:#fff3bf}
figure{margin:1.5rem 0;break-inside:avoid}
figure svg{width:100%;height:auto;max-width:60rem;display:block}
figcaption{color:var(--muted);font-size:.85rem}
.note{background:#fff8e1;border-left:4px solid #f0b400;margin:1rem 0;padding:.2rem 1rem}
.cite{background:var(--bg-soft);border:1px solid var(--rule);padding:.6rem 1rem}
.cite pre{white-space:pre-wrap;word-break:break-word;margin:0;font-size:.85rem}
.items li{margin:.35rem 0}
a{color:var(--accent)}
.row-link{font-size:.8rem;text-decoration:none}
nav.toc{font-size:.9rem;color:var(--muted);display:flex;flex-wrap:wrap;gap:.2rem .8rem}
@media (max-width:40rem){body{font-size:15px;padding:.6rem}table{font-size:.75rem}h1{font-size:1.3rem}}
@media print{body{max-width:none;font-size:10pt}nav.toc,.row-link{display:none}a{color:inherit;text-decoration:none}
 .table-wrap{overflow:visible}table{font-size:7.5pt}th{position:static}h2{break-after:avoid}
 tr,figure,.cite{break-inside:avoid}}
"""


# The table, note and figure rules again, scoped to one container: what a notebook shows inline must not
# restyle JupyterLab itself.
SCOPED_STYLE = """
.runlocalai-report table{border-collapse:collapse;font-size:12px}
.runlocalai-report th,.runlocalai-report td{border:1px solid #d1d9e0;padding:3px 6px;text-align:left}
.runlocalai-report td.num{text-align:right;white-space:nowrap}
.runlocalai-report .table-wrap{overflow-x:auto}
.runlocalai-report figure svg{width:100%;height:auto;max-width:60rem}
.runlocalai-report .note{background:#fff8e1;border-left:4px solid #f0b400;padding:.2rem 1rem}
.runlocalai-report .small{font-size:.85em;color:#59636e}
"""


def render_markdown(blocks: list[Block]) -> str:
    return "\n".join(block.markdown() for block in blocks)


def render_html(blocks: list[Block], title: str, toc: list[tuple[str, str]] | None = None) -> str:
    """One self-contained page: no script, no external stylesheet, font, image or link target outside it."""
    nav = ("<nav class='toc'>" + "".join(f"<a href='#{html.escape(a)}'>{html.escape(t)}</a>" for a, t in toc)
           + "</nav>") if toc else ""
    body = "\n".join(block.html() for block in blocks)
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width,initial-scale=1'>"
            "<link rel='icon' href='data:,'>"
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>"
            f"<body>{nav}\n{body}\n</body></html>\n")
