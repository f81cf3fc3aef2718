"""Hostile module names reach terminals, markdown and JUnit files only as visible escapes."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from costlens.sanitize import markdown_cell, terminal_text, xml_text

# The names issue 9 found reaching the terminal raw, each with the escape a reader should see.
HOSTILE = [
    ("a\nb", "a\\nb"),
    ("a\rb", "a\\rb"),
    ("a\tb", "a\\tb"),
    ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),
    ("abc\u202edcba", "abc\\u202edcba"),
    ("iso\u2066late\u2069", "iso\\u2066late\\u2069"),
    ("lone\ud800", "lone\\ud800"),
    ("nul\x00", "nul\\x00"),
    ("del\x7f", "del\\x7f"),
    ("csi\x9b2J", "csi\\x9b2J"),  # C1 CSI: clears the screen on terminals that read 8-bit controls
    ("line\u2028sep", "line\\u2028sep"),
]


@pytest.mark.parametrize(("name", "shown"), HOSTILE)
def test_terminal_text_escapes_every_hostile_character(name: str, shown: str) -> None:
    assert terminal_text(name) == shown


def test_terminal_text_leaves_clean_text_alone() -> None:
    clean = "features.0.conv_1 (Conv2d) · 28×28 — naïve \\ path</script>"
    assert terminal_text(clean) == clean


@pytest.mark.parametrize("name", [name for name, _ in HOSTILE])
def test_terminal_text_is_printable_utf8(name: str) -> None:
    shown = terminal_text(name)
    shown.encode("utf-8")  # a lone surrogate would raise here
    assert shown.isprintable()


def test_markdown_cell_keeps_a_row_one_row() -> None:
    # one row of a two-column table: the name must neither end the cell nor the line
    row = f"| {markdown_cell('a|b' + chr(10) + '| evil |')} | 1 |"
    assert "\n" not in row
    unescaped_pipes = [i for i, c in enumerate(row) if c == "|" and row[i - 1] != "\\"]
    assert len(unescaped_pipes) == 3


@pytest.mark.parametrize(("name", "cell"), [
    ("</script>", "&lt;/script&gt;"),
    ("<img src=x onerror=alert(1)>", "&lt;img src=x onerror=alert(1)&gt;"),
    ("a`b`", "a\\`b\\`"),
    ("*bold*", "\\*bold\\*"),
    ("_em_", "\\_em\\_"),
    ("conv_1_a", "conv_1_a"),  # intraword underscores do not format in GitHub markdown
    ("[x](http://e.vil)", "\\[x\\](http://e.vil)"),
    ("~~gone~~", "\\~\\~gone\\~\\~"),
    ("a\\|b", "a\\\\\\|b"),  # an existing backslash must not swallow the escape of '|'
    ("&lt;", "&amp;lt;"),
    ("x\ny", "x\\\\ny"),  # the newline's escape '\n' is itself markdown-escaped, so it shows as \n
])
def test_markdown_cell_escapes(name: str, cell: str) -> None:
    assert markdown_cell(name) == cell


@pytest.mark.parametrize("name", [name for name, _ in HOSTILE] + ["</script>", "a&b", "\ufffe\uffff", "\ud800\udc00"])
def test_xml_text_makes_well_formed_junit(name: str) -> None:
    case = ET.Element("testcase", name=xml_text(name))
    ET.SubElement(case, "failure", message=xml_text(name)).text = xml_text(name)
    document = ET.tostring(case, encoding="unicode").encode("utf-8")
    parsed = ET.fromstring(document)  # raises ParseError on a character XML forbids
    assert parsed.get("name") == xml_text(name)


def test_xml_text_keeps_what_xml_allows() -> None:
    assert xml_text("line one\nline\ttwo\r") == "line one\nline\ttwo\r"
    assert xml_text("a\x1bb\x0c") == "a\\x1bb\\x0c"
    assert xml_text("\ufffe") == "\\ufffe"


def test_raw_hostile_name_breaks_xml_without_sanitizing() -> None:
    # the failure xml_text prevents: ElementTree writes ESC as is and the parser rejects it
    document = ET.tostring(ET.Element("testcase", name="a\x1bb"), encoding="unicode")
    with pytest.raises(ET.ParseError):
        ET.fromstring(document)
