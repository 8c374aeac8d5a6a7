"""Tiny HTML builder for the report: escaping, tables, figures, sections.

The page is one self-contained file: CSS inline, figures as ``data:`` URIs of SVG
documents (each SVG stays its own document, so element ids of different figures
cannot collide), no script and no external reference of any kind.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Sequence

__all__ = ["esc", "table", "figure", "section", "page", "details", "fmt"]

CSS = """
:root { --fg:#1d2330; --muted:#5b6475; --line:#d9dde5; --accent:#1f77b4; --bg:#ffffff; --band:#f5f7fa; }
* { box-sizing: border-box; }
body { font: 14px/1.45 -apple-system, "Segoe UI", Roboto, "DejaVu Sans", Arial, sans-serif; color: var(--fg);
       background: var(--bg); margin: 0; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 60px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 36px 0 8px; padding-bottom: 4px; border-bottom: 2px solid var(--line); }
h3 { font-size: 15px; margin: 20px 0 6px; }
p.meta, p.note, .muted { color: var(--muted); font-size: 12.5px; }
nav { margin: 12px 0 0; font-size: 13px; }
nav a { margin-right: 14px; color: var(--accent); text-decoration: none; }
table { border-collapse: collapse; margin: 8px 0 4px; font-size: 13px; font-variant-numeric: tabular-nums; }
th, td { padding: 4px 10px; border-bottom: 1px solid var(--line); text-align: left; white-space: nowrap; }
th { background: var(--band); font-weight: 600; }
td.num, th.num { text-align: right; }
tr.baseline td { background: #fbfbe8; }
.sig-up { color: #137333; font-weight: 600; }
.sig-down { color: #b3261e; font-weight: 600; }
figure { margin: 12px 0 18px; }
figure img { max-width: 100%; height: auto; display: block; }
figcaption { color: var(--muted); font-size: 12.5px; margin-top: 2px; }
details { margin: 6px 0; }
summary { cursor: pointer; color: var(--accent); }
pre { background: var(--band); padding: 10px; overflow-x: auto; font-size: 12px; }
.warn { background: #fff4e5; border-left: 4px solid #ff9800; padding: 6px 10px; margin: 8px 0; }
.scroll { overflow-x: auto; }
"""


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def fmt(value: object, digits: int = 4) -> str:
    """Numbers with ``digits`` decimals (ints as ints), ``-`` for None/NaN, other values as text."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:.{digits}f}"
    return str(value)


def _is_num(text: str) -> bool:
    t = (
        text.replace("±", "")
        .replace("%", "")
        .replace("▲", "")
        .replace("▼", "")
        .replace("*", "")
        .replace(" ", "")
    )
    t = t.replace("+", "").replace("-", "").replace(".", "").replace("e", "")
    return t.isdigit()


def table(
    header: Sequence[str],
    rows: Sequence[Sequence[object]],
    row_classes: Sequence[str] | None = None,
    raw_columns: Sequence[int] = (),
    right: Sequence[int] | None = None,
) -> str:
    """An HTML table; ``raw_columns`` hold trusted HTML.

    Columns listed in ``right`` (default: those whose cells all look numeric) are right-aligned.
    """
    out = ['<div class="scroll"><table>', "<thead><tr>"]
    if right is None:
        numeric = [
            bool(rows) and all(_is_num(fmt(r[j])) or fmt(r[j]) == "-" for r in rows)
            for j in range(len(header))
        ]
    else:
        numeric = [j in set(right) for j in range(len(header))]
    for j, h in enumerate(header):
        out.append(f'<th class="num">{esc(h)}</th>' if numeric[j] else f"<th>{esc(h)}</th>")
    out.append("</tr></thead><tbody>")
    for i, row in enumerate(rows):
        cls = f' class="{esc(row_classes[i])}"' if row_classes and row_classes[i] else ""
        out.append(f"<tr{cls}>")
        for j, cell in enumerate(row):
            text = cell if j in raw_columns else esc(fmt(cell))
            out.append(f'<td class="num">{text}</td>' if numeric[j] else f"<td>{text}</td>")
        out.append("</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def figure(svg_text: str, caption: str, alt: str | None = None) -> str:
    data = base64.b64encode(svg_text.encode("utf-8")).decode("ascii")
    return (
        f'<figure><img alt="{esc(alt or caption)}" src="data:image/svg+xml;base64,{data}">'
        f"<figcaption>{esc(caption)}</figcaption></figure>"
    )


def section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{esc(anchor)}"><h2>{esc(title)}</h2>{body}</section>'


def details(summary: str, body_html: str) -> str:
    return f"<details><summary>{esc(summary)}</summary>{body_html}</details>"


def page(title: str, subtitle: str, sections: Sequence[tuple[str, str, str]]) -> str:
    """The whole document; ``sections`` are ``(anchor, title, body html)``."""
    nav = "".join(f'<a href="#{esc(a)}">{esc(t)}</a>' for a, t, _ in sections)
    body = "".join(section(a, t, b) for a, t, b in sections)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        # an empty data: icon stops the browser from asking for /favicon.ico
        "<link rel=\"icon\" href=\"data:,\">"
        f"<title>{esc(title)}</title><style>{CSS}</style></head>"
        f"<body><main><h1>{esc(title)}</h1><p class=\"meta\">{esc(subtitle)}</p><nav>{nav}</nav>{body}"
        "</main></body></html>\n"
    )
