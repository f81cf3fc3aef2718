"""Rule and alias lines are read from the TOML text, so a comment or another string quoting a
rule cannot take its line (issue 9, item 4); every TOML string form is recognised."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from costlens.budget import BudgetFileError, load_budget


def lines_of(tmp_path: Path, text: str) -> list[int]:
    path = tmp_path / "b.toml"
    path.write_text(textwrap.dedent(text).lstrip())
    return [rule.line for rule in load_budget(path).rules]


def test_comments_and_strings_that_quote_a_rule(tmp_path: Path) -> None:
    assert lines_of(tmp_path, '''
        # rules = ["conv5x5.macs <= 1"]  -- a comment quoting the rule and the key
        [models]
        note = { zoo = "lenet5", input = "1x1x32x32" }   # "conv5x5.macs <= 1"
        rules = [  # ] and " in a comment
          "lenet5.macs <= 1G",  # "conv5x5.macs <= 1"
          # "conv5x5.macs <= 1"
          "conv5x5.macs <= 1",
        ]
    ''') == [5, 7]


def test_every_string_form(tmp_path: Path) -> None:
    toml = [
        "rules = [",
        r'  "conv5x5.macs <= 1\u0030",',  # an escape: the rule reads "conv5x5.macs <= 10"
        "  'lenet5.macs <= 1G',",
        '  """lenet5.params',
        '<= 1M""",',
        "  " + "'" * 3 + "conv5x5.flops <= 1G" + "'" * 3 + ",",
        r'  "conv5x5:a\"b.macs <= 1",  # an escaped quote: a block named a"b',
        "]",
    ]
    assert lines_of(tmp_path, "\n".join(toml) + "\n") == [2, 3, 4, 6, 7]


def test_the_same_rule_twice_gets_each_its_line(tmp_path: Path) -> None:
    assert lines_of(tmp_path, 'rules = ["lenet5.macs <= 1G",\n\n"lenet5.macs <= 1G"]\n') == [1, 3]


def test_an_alias_error_names_the_alias_line_not_a_comment(tmp_path: Path) -> None:
    with pytest.raises(BudgetFileError, match=r"b.toml:4: model 'bad'"):
        lines_of(tmp_path, '''
            [models]
            # bad = { zoo = "lenet5" } was here
            good = { zoo = "lenet5" }
            "bad" = { zoo = 5 }
            rules = ["good.macs <= 1G"]
        ''')
