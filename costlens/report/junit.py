"""Budget verdicts as JUnit XML, which CI systems show as test results."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from costlens.budget import Verdict
from costlens.sanitize import xml_text
from costlens.units import grouped


def describe_limit(verdict: Verdict) -> str:
    """The limit as the rule wrote it, with its value: '0.45 × inception-naive.macs = 136,559,002'."""
    rule = verdict.rule
    value = grouped(round(verdict.limit))
    if rule.right is None:
        return value
    factor = "" if rule.factor == 1 else f"{rule.factor:g} × "
    return f"{factor}{rule.right} = {value}"


def junit_xml(verdicts: list[Verdict], suite: str = "costlens budgets") -> str:
    """One testcase per rule; a failed rule carries a <failure> with measured and limit."""
    failures = sum(not v.passed for v in verdicts)
    root = ET.Element("testsuites", name=suite, tests=str(len(verdicts)), failures=str(failures))
    node = ET.SubElement(root, "testsuite", name=suite, tests=str(len(verdicts)), failures=str(failures),
                         errors="0", skipped="0")
    for verdict in verdicts:
        case = ET.SubElement(node, "testcase", classname="costlens.budget",
                             name=xml_text(f"line {verdict.rule.line}: {verdict.rule.text}"))
        if not verdict.passed:
            message = f"measured {grouped(round(verdict.measured))}, limit {verdict.rule.op} {describe_limit(verdict)}"
            failure = ET.SubElement(case, "failure", message=xml_text(message), type="BudgetExceeded")
            failure.text = xml_text(f"{verdict.rule.text}\n{message}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
