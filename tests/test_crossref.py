"""The pandoc path's cross-reference filter (src/klvae/report/crossref.lua): figures, tables, sections."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pypandoc

FILTER = Path(__file__).resolve().parents[1] / "src" / "klvae" / "report" / "crossref.lua"

DOC = """
# Summary {#sec-summary .unnumbered}

See @sec-e1, @sec-e1-data and @sec-e2; @tbl-a.

# E1 {#sec-e1}

## Data {#sec-e1-data}

| a |
|---|
| 1 |

: A table {#tbl-a}

# E2 {#sec-e2}

@sec-nowhere
"""


def _html(tmp_path: Path) -> str:
    src = tmp_path / "doc.md"
    src.write_text(DOC)
    proc = subprocess.run([pypandoc.get_pandoc_path(), str(src), "--lua-filter", str(FILTER), "--number-sections",
                           "--wrap=none", "--to", "html5"], capture_output=True, text=True, check=True)
    return proc.stdout + proc.stderr


def test_section_references_get_pandocs_section_numbers(tmp_path):
    out = _html(tmp_path)
    # the unnumbered summary does not count: E1 is section 1, its subsection 1.1, E2 section 2
    assert '<a href="#sec-e1" class="crossref">Section\u00a01</a>' in out
    assert '<a href="#sec-e1-data" class="crossref">Section\u00a01.1</a>' in out
    assert '<a href="#sec-e2" class="crossref">Section\u00a02</a>' in out
    assert '<a href="#tbl-a" class="crossref">Table\u00a01</a>' in out
    # an unknown section reference is flagged as Quarto does, and named on stderr
    assert "?@sec-nowhere" in out and "unresolved reference @sec-nowhere" in out


def test_content_visible_when_format_is_kept_only_in_that_format(tmp_path):
    src = tmp_path / "doc.md"
    src.write_text('::: {.content-visible when-format="html"}\n[PDF version](klvae.pdf)\n:::\n\nBody text.\n')
    outs = {fmt: subprocess.run([pypandoc.get_pandoc_path(), str(src), "--lua-filter", str(FILTER), "--to", fmt],
                                capture_output=True, text=True, check=True).stdout for fmt in ("html5", "typst")}
    assert '<a href="klvae.pdf">PDF version</a>' in outs["html5"] and "<div" not in outs["html5"]
    assert "PDF version" not in outs["typst"] and "Body text." in outs["typst"]
