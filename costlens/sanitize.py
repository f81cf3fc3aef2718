"""Text from a model (module names, types, aliases) made safe for terminals, markdown and XML.

Module names come from user code and can hold anything a Python string can: newlines,
carriage returns, ESC sequences that recolour or clear a terminal, bidi overrides that
display text in another order than it is stored, and lone surrogates that no UTF-8
writer accepts. Each function here turns such characters into visible escapes, so a
table row stays one row and what is shown is what is stored:

* ``terminal_text``: every control character (C0 including newline and tab, since a
  table cell is one line; DEL; C1), the bidi embeddings, overrides, isolates and marks,
  the Unicode line and paragraph separators, and lone surrogates become ``\\n``,
  ``\\x1b``, ``\\u202e``, ``\\ud800`` ... Everything else, backslashes included, is left
  as it is, so clean text comes back unchanged.
* ``markdown_cell``: ``terminal_text``, then the characters that would end a table cell,
  open HTML, or format (``\\ | ` * [ ] ~``, ``_`` at a word edge) are backslash-escaped,
  ``& < >`` become entities. Meant for a cell outside a code span: inside backticks
  markdown shows escapes literally.
* ``xml_text``: for an XML serializer such as ElementTree, which escapes ``& < > "``
  itself but writes any code point it is given; the characters XML 1.0 cannot carry
  (C0 other than tab, newline and carriage return; surrogates; U+FFFE, U+FFFF) and the
  ones that only mislead a reader (DEL, C1, bidi controls) become visible escapes.
"""

from __future__ import annotations

import re

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# C0, DEL, C1; bidi marks (ALM, LRM, RLM), embeddings and overrides (U+202A-E), isolates
# (U+2066-9); line and paragraph separators, which some terminals and renderers break on;
# every surrogate (in a str only lone ones can occur).
_TERMINAL_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
# The same less tab, newline and carriage return (XML keeps them), plus the two non-characters XML forbids.
_XML_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
                         "\ud800-\udfff\ufffe\uffff]")
# Characters with a meaning in a GitHub-flavoured markdown table cell; '_' is handled apart.
_MARKDOWN_SPECIAL = re.compile(r"[\\|`*\[\]~&<>]")
_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
# '_' emphasises only at a word edge: 'conv_1' stays as it is, '_x_' does not.
_EDGE_UNDERSCORE = re.compile(r"(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])")


def _visible(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal_text(text: str) -> str:
    """``text`` as one line that cannot steer a terminal: control and bidi characters as escapes."""
    return _TERMINAL_UNSAFE.sub(_visible, text)


def markdown_cell(text: str) -> str:
    """``text`` for one cell of a markdown table: one line, no formatting, no HTML."""
    escaped = _MARKDOWN_SPECIAL.sub(lambda m: _ENTITIES.get(m.group(), "\\" + m.group()), terminal_text(text))
    return _EDGE_UNDERSCORE.sub(r"\\_", escaped)


def xml_text(text: str) -> str:
    """``text`` with only characters XML 1.0 can carry, for an attribute or element of a JUnit file."""
    return _XML_UNSAFE.sub(_visible, text)
