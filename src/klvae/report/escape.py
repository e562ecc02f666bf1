"""Text from a run or a results bundle, escaped for pandoc Markdown: the one place it is done.

Every string the report shows that comes from data -- a run record (host, CPU, versions), a
config value, a table cell, a JSON field, an error message of the compatibility trials, a
strategy, backend or experiment name, a bundle's manifest -- passes through :func:`md_text` or
:func:`md_code` before it is written into a generated fragment or a ``_variables.yml`` value.
Quarto's ``{{< var >}}`` shortcode (and :func:`klvae.report.render.expand_shortcodes`, which
emulates it) inserts a variable's value into the Markdown source, so a value is Markdown too.

The guarantee of :func:`md_text`: its output, put anywhere inline -- running text, a pipe
table's cell, a list item, a caption, a heading, a double-quoted YAML string of the front
matter -- is read by pandoc's ``markdown`` reader (the extensions pandoc enables by default,
those the report uses) as plain text, showing the value's characters literally (every run of
whitespace, line breaks included, as one space; control characters as U+FFFD). No raw HTML,
raw TeX or Typst, link, image, autolink, citation, footnote, math, emphasis, strikeout,
super- or subscript, code span, span, attribute, entity from the data, no heading, list,
block quote, table row or line break, no ``{{<`` shortcode and no smart typography (``--``,
``...``, quotes) ever comes out of it.

How: the ASCII punctuation that can start or close markup is written as numeric character
references (``&#60;`` for ``<``), which pandoc reads back as that one character, in every output
format, and which hold no backslash (a YAML double-quoted string would read one as its own escape),
no ``|`` (a pipe table would split the cell) and no ``{{<``. Punctuation that is markup only at
the start of a line or in a run (``-``, ``+``, ``.``, ``:``, ``%``, ``(``, ``)``, ``=``) is written
so only there, ``:`` also before a character other than a space or ``/`` (an emoji name, where a
reader has them), ``_`` unless it joins two letters or digits; ``,``, ``;``, ``/``, ``?``,
digits, letters and everything outside ASCII stay as they are, so numbers (``-1,234.5``,
``1.0e-05``), versions, hashes and names such as ``end_layer`` read the same in the generated
files.

:func:`md_url` percent-encodes a link's destination; :func:`md_code` writes a code span (or, where
a code span cannot hold the value, :func:`md_text`).

Markup that the report's own code writes (a code span around a name, ``**differs**``, a link
to a section) is :class:`Markdown`: a ``str`` that says "already Markdown, do not escape".
:func:`md_text` and :func:`md_code` return it, :func:`md_text` passes it through unchanged, so
a value is escaped once, never twice; :func:`klvae.report.tables.markdown_table` escapes every
cell that is not :class:`Markdown`, and :func:`md_values` every string of a variables tree that
is not (:func:`write_variables` writes one). Build a cell that mixes the code's markup and data
as ``Markdown(f"... {md_code(name)} ({md_text(kind)})")``: the data escaped where it enters.
"""

from __future__ import annotations

import re
from numbers import Number
from pathlib import Path


class Markdown(str):
    """Markdown that the report's code wrote (its markup is meant), or data already escaped.

    A plain ``str`` is text: :func:`md_text` escapes it. Joining ``Markdown`` with ``+`` or an
    f-string gives a plain ``str`` again; wrap the result, with every data part escaped.
    """

    __slots__ = ()


#: Always written as a character reference: each starts or closes markup anywhere in a line
#: (``\\`` escapes and raw TeX, `````` code, ``*`` emphasis, ``{}`` attributes and
#: shortcodes, ``[]`` links, spans, citations and notes, ``<>`` HTML and autolinks, ``#``
#: headings, ``!`` images, ``|`` tables, ``$`` math, ``@`` citations, ``^``/``~`` super- and
#: subscript, strikeout, ``&`` entities, ``"``/``'`` smart quotes). ``_`` too, but between two
#: letters or digits, where pandoc never reads it as emphasis (``end_layer`` stays).
ALWAYS = frozenset("\\`*{}[]<>#!|$@^~&\"'")
#: Written as a character reference in a run of two or more (``--`` and ``---`` dashes,
#: ``...`` ellipsis, ``:::`` divs, ``==`` and ``++``) and where they start the text (list
#: markers, ``:`` definitions, ``%`` title lines, ``(@)`` and ``(a)`` lists, ``=`` setext lines);
#: a ``-`` or ``+`` before a digit (a signed number) is no marker and stays.
AT_START_OR_IN_RUNS = frozenset("-+.:%()=")
#: An ordered list's marker at the start (``1.``, ``a)``, ``iv.``, ``#.``): its ``.`` or ``)``,
#: when a space or the end follows, is written as a character reference.
_LIST_MARKER = re.compile(r"^(?:[0-9]{1,9}|[A-Za-z]|[ivxlcdmIVXLCDM]+|#)([.)])(?= |$)")
#: Control characters (C0 but whitespace, DEL, C1): shown as U+FFFD.
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f]")
#: What a code span cannot hold everywhere the report puts one: its own fence (a backtick), a
#: pipe table's ``|`` (pandoc splits the cell even inside code), a ``{{<`` shortcode (expanded
#: inside code spans too), and ``"`` or ``\\`` (a double-quoted YAML string of the front matter).
_NOT_IN_CODE = ("`", "|", "{{<", ">}}", '"', "\\")


def _ref(ch: str) -> str:
    return f"&#{ord(ch)};"


#: Whitespace that ends a line or separates words (not the no-break space, which keeps a number
#: and its unit together and is no markup).
_BREAKING_SPACE = re.compile(r"[ \t\n\r\f\v\x85\u2028\u2029]+")


def _one_line(value) -> str:
    text = value if isinstance(value, str) else str(value)
    return _BREAKING_SPACE.sub(" ", _CONTROL.sub("\ufffd", text)).strip(" ")


def md_text(value) -> Markdown:
    """``value`` as pandoc Markdown that shows it literally, as plain text (module docstring).

    Args:
        value: any value; not a ``str``: its ``str()`` (a number as Python writes it -- format
            numbers first where a format matters). A :class:`Markdown` value is returned as it is
            (it is escaped already, or the code's own markup).

    Returns:
        :class:`Markdown` on one line, no leading or trailing space; ``""`` for empty or blank text.
    """
    if isinstance(value, Markdown):
        return value
    text = _one_line(value)
    out = []
    n = len(text)
    marker = _LIST_MARKER.match(text)
    for i, ch in enumerate(text):
        if ch in ALWAYS or (ch == "_" and not (0 < i < n - 1 and text[i - 1].isalnum() and text[i + 1].isalnum())):
            out.append(_ref(ch))
        elif ch == ":" and i + 1 < n and not text[i + 1].isspace() and text[i + 1] != "/":
            out.append(_ref(ch))  # an emoji name (:smile:, where a reader has them) starts so
        elif ch in AT_START_OR_IN_RUNS and (
                (i == 0 and not (ch in "-+" and i + 1 < n and text[i + 1].isdigit()))
                or (i > 0 and text[i - 1] == ch) or (i + 1 < n and text[i + 1] == ch)
                or (marker is not None and i == marker.start(1))):
            out.append(_ref(ch))
        else:
            out.append(ch)
    return Markdown("".join(out))


def md_code(value) -> Markdown:
    """``value`` as a pandoc code span (`````name`````) that shows it literally.

    Where a code span could not hold it in every place the report puts one (:data:`_NOT_IN_CODE`:
    a backtick, ``|``, a shortcode's ``{{<``/``>}}``, ``"`` or ``\\``), the value is
    :func:`md_text` instead: the same characters, not in a monospace font.

    Args:
        value: any value (``str()`` of it); whitespace runs become one space.

    Returns:
        :class:`Markdown`; ``""`` for empty or blank text.
    """
    text = _one_line(value)
    if not text:
        return Markdown("")
    if any(bad in text for bad in _NOT_IN_CODE):
        return md_text(text)
    return Markdown(f"`{text}`")


#: What a link destination keeps as it is: RFC 3986's unreserved and reserved characters but ``(``
#: and ``)`` (a ``)`` ends a Markdown link's destination), and ``%``.
_URL_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~:/?#@!$&'*+,;=%")


def md_url(value) -> Markdown:
    """A URL for a Markdown link's destination (``[text](md_url)``): every character outside
    :data:`_URL_SAFE` percent-encoded as UTF-8 --
    ``(``, ``)``, ``<``, ``>``, ``[``, ``]``, ``{``, ``}``, ``|``, ``\\``, ``"``, `````, spaces,
    tabs and newlines among them -- so the destination cannot end early, hold a shortcode or
    start markup. A URL that was built of safe characters is unchanged.

    Returns:
        :class:`Markdown` (the destination only; the link text is escaped on its own).
    """
    return Markdown("".join(ch if ch in _URL_SAFE else "".join(f"%{b:02X}" for b in ch.encode()) for ch in str(value)))


def md_values(tree):
    """A variables tree (dicts, lists, scalars) with every string that is not :class:`Markdown`
    escaped by :func:`md_text`; numbers, booleans and ``None`` kept, :class:`Markdown` kept as a
    plain ``str`` (so :func:`yaml.safe_dump` can write it). Keys are the code's and are kept.

    Raises:
        TypeError: a value of another type (its ``str()`` would be data passed through unchecked).
    """
    if isinstance(tree, dict):
        return {k: md_values(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [md_values(v) for v in tree]
    if isinstance(tree, Markdown):
        return str(tree)
    if isinstance(tree, str):
        return str(md_text(tree))
    if tree is None or isinstance(tree, (bool, Number)):
        return tree
    raise TypeError(f"a report variable must be text, a number or a list/dict of them, not {type(tree).__name__}")


def write_variables(path: str | Path, values: dict) -> dict:
    """Write report variables (``_variables.yml`` material, read by ``{{< var >}}``) as YAML,
    every string escaped once (:func:`md_values`).

    Returns:
        The values as written.
    """
    import yaml

    from klvae.io import write_text

    escaped = md_values(values)
    write_text(path, yaml.safe_dump(escaped, sort_keys=False, allow_unicode=True))
    return escaped
