"""The documentation's links hold: README.md and every docs/*.md page.

Every relative Markdown link or image target (``[text](path)``, ``![alt](path)``, reference
definitions ``[name]: path``, HTML ``href``/``src``) must name an existing file of the
repository, and an anchor into a Markdown page (``page.md#section``) one of its headings.
Web addresses (``http(s)://``), ``mailto:`` and anchors within the same page (``#section``)
are not checked. No link, and no text either (code included), may name a path that leaves the
repository (``../`` above its root). Pure file reading: well under a second.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from urllib.parse import unquote

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.DOTALL)
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*(<[^>]*>|[^()\s]*(?:\([^()\s]*\)[^()\s]*)*)"
                         r"(?:\s+(?:\"[^\"]*\"|'[^']*'|\([^)]*\)))?\s*\)")
REF_DEF = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)", re.MULTILINE)
HTML_ATTR = re.compile(r"<(?:a|img)\b[^>]*?\b(?:href|src)\s*=\s*[\"']([^\"']+)[\"']", re.IGNORECASE)
EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|//)", re.IGNORECASE)  # http:, https:, mailto:, ...
#: A path in running text or code that starts by going up: ``../x``, ``../../x`` (not ``a/../b``).
UP_PATH = re.compile(r"(?<![\w.\-/~])((?:\.\./)+)")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$", re.MULTILINE)


def _rel(page: Path) -> str:
    return page.relative_to(REPO).as_posix()


def _prose(text: str) -> str:
    """The page without fenced code blocks and code spans (where brackets are not links)."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def link_targets(text: str) -> list[str]:
    """Every link and image target of a Markdown page, outside code."""
    prose = _prose(text)
    found = [m.group(1) for m in INLINE_LINK.finditer(prose)]
    found += [m.group(1) for m in REF_DEF.finditer(prose)]
    found += [m.group(1) for m in HTML_ATTR.finditer(prose)]
    return [t[1:-1] if t.startswith("<") and t.endswith(">") else t for t in found]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text lower-cased, punctuation dropped, spaces -> '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link: its text only
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    kept = "".join(ch for ch in text if ch in " -_" or unicodedata.category(ch)[0] in "LNM")
    return kept.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """The anchors of a Markdown page's headings (repeated headings get -1, -2, ... as on GitHub)."""
    seen: dict[str, int] = {}
    result = set()
    for m in HEADING.finditer(FENCE.sub("", page.read_text(encoding="utf-8"))):
        base = slug(m.group(2))
        n = seen.get(base, 0)
        seen[base] = n + 1
        result.add(base if n == 0 else f"{base}-{n}")
    return result


def inside_repo(path: Path) -> bool:
    try:
        path.resolve().relative_to(REPO)
    except ValueError:
        return False
    return True


def link_problems(page: Path) -> list[str]:
    problems = []
    for target in link_targets(page.read_text(encoding="utf-8")):
        if not target or target.startswith("#") or EXTERNAL.match(target):
            continue
        path_part, _, anchor = target.partition("#")
        path_part = unquote(path_part.split("?", 1)[0])
        if path_part.startswith("/"):
            problems.append(f"{_rel(page)}: link {target!r} is an absolute path; use one relative to the page")
            continue
        resolved = (page.parent / path_part)
        if not inside_repo(resolved):
            problems.append(f"{_rel(page)}: link {target!r} leaves the repository")
        elif not resolved.exists():
            problems.append(f"{_rel(page)}: link {target!r}: no such file {resolved.resolve().relative_to(REPO)}")
        elif anchor and resolved.is_file() and resolved.suffix == ".md" and anchor not in anchors(resolved):
            problems.append(f"{_rel(page)}: link {target!r}: {_rel(resolved.resolve())} has no heading "
                            f"with the anchor #{anchor}")
    return problems


def outside_paths(page: Path) -> list[str]:
    """Paths named anywhere on the page (prose or code) that climb above the repository's root."""
    problems = []
    text = page.read_text(encoding="utf-8")
    for m in UP_PATH.finditer(text):
        ups = m.group(1).count("../")
        if not inside_repo(page.parent.joinpath(*[".."] * ups)):
            line = text.count("\n", 0, m.start()) + 1
            snippet = text[m.start():m.start() + 40].split()[0] if text[m.start():].split() else m.group(1)
            problems.append(f"{_rel(page)}:{line}: {snippet!r} names a path outside the repository")
    return problems


def test_pages_found():
    assert (REPO / "README.md").is_file()
    assert len(PAGES) >= 2, "docs/*.md: no pages found"


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_relative_links_resolve(page: Path):
    problems = link_problems(page)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_no_path_outside_repository(page: Path):
    problems = outside_paths(page)
    assert not problems, "\n".join(problems)


def test_checker_catches_bad_links(monkeypatch):
    """The checks themselves: a missing file, a climb out of the repository and a wrong anchor
    are reported; web addresses, mailto: and same-page anchors are not."""
    page = REPO / "docs" / "_probe.md"  # never written: read_text is replaced below
    text = ("[ok](../README.md) [web](https://example.org/x) [mail](mailto:a@b.c) [here](#top)\n"
            "![img](missing.png) [up](../../elsewhere/SPEC.md) [anchor](usage.md#no-such-heading)\n"
            "`[code](not-a-link.md)` and text naming ../../notes/plan.md\n")
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: text if self == page else
                        Path.read_bytes(self).decode("utf-8"))
    links = link_problems(page)
    assert len(links) == 3 and "missing.png" in links[0] and "leaves" in links[1] and "#no-such-heading" in links[2]
    assert len(outside_paths(page)) == 2  # the link ../../elsewhere and the text ../../notes
