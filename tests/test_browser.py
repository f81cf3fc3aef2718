"""The HTML reports in a real browser: charts drew, totals match, nothing left the page."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from costlens.api import profile
from costlens.comparison import align
from costlens.report import html
from tests.evil_models import EVIL_NAME, EVIL_TYPE, build


def _open(browser, path: Path):  # type: ignore[no-untyped-def]
    """Load a page; return it with the console errors, requests and dialogs it caused."""
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    seen: dict[str, list[str]] = {"errors": [], "requests": [], "dialogs": []}
    page.on("console", lambda m: seen["errors"].append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: seen["errors"].append(str(e)))
    page.on("request", lambda r: seen["requests"].append(r.url))
    page.on("dialog", lambda d: (seen["dialogs"].append(d.message), d.dismiss()))
    page.goto(path.resolve().as_uri())
    page.wait_for_function("document.querySelectorAll('.chart .main-svg').length > 0")
    page.wait_for_timeout(300)
    return page, seen


def _traces_per_chart(page) -> dict[str, int]:  # type: ignore[no-untyped-def]
    return dict(page.eval_on_selector_all(
        ".chart", "els => els.map(e => [e.dataset.chart, e.querySelectorAll('g.trace, g.slice').length])"))


def _only_local(requests: list[str], allowed: set[str]) -> None:
    assert requests and set(requests) <= allowed, requests


def test_profile_page_draws_every_chart_and_matches_json(browser, zoo_profile, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = zoo_profile("googlenet")
    page_path = html.write_page(tmp_path / "googlenet.html", lambda src: html.profile_page(result, src))
    page, seen = _open(browser, page_path)
    traces = _traces_per_chart(page)
    assert set(traces) == {"macs-bars", "params-bars", "cumulative", "sunburst", "by-type", "shape-walk", "memory"}
    assert all(count >= 1 for count in traces.values()), traces
    shown = dict(page.eval_on_selector_all(
        ".total", "els => els.map(e => [e.dataset.metric, e.querySelector('.value').textContent])"))
    data = json.loads(result.to_json())
    for metric in ("params", "macs", "flops"):
        assert shown[metric].replace(",", "") == str(data["totals"][metric])
    assert "inception3a.branch3.conv.conv" in page.inner_text("#formulas")
    assert "28·28·32 × 5·5·16 = 10,035,200" in page.inner_text("#formulas")
    assert page.locator("#layers tbody tr").count() == len(result.layers)
    page.fill("input.filter", "inception5b.branch3")
    visible = page.eval_on_selector_all("#layers tbody tr", "rows => rows.filter(r => r.style.display !== 'none').length")
    # branch3; reduce with its conv and relu; conv (the 5×5) with its conv and relu: 7 rows
    assert visible == 7
    _only_local(seen["requests"], {page_path.resolve().as_uri()})
    assert seen["errors"] == []
    page.screenshot(path=str(tmp_path / "googlenet.png"), full_page=True)


def test_sorting_the_layer_table(browser, zoo_profile, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = zoo_profile("inception")
    page_path = html.write_page(tmp_path / "i.html", lambda src: html.profile_page(result, src))
    page, _ = _open(browser, page_path)
    page.click("#layers th:nth-child(8)")  # MACs ascending
    page.click("#layers th:nth-child(8)")  # descending
    first = page.inner_text("#layers tbody tr:first-child td:nth-child(2)").strip()
    assert first == "<root>"  # the root holds every MAC
    second = page.inner_text("#layers tbody tr:nth-child(2) td:nth-child(2)").strip()
    assert second == "branch2"  # 101,154,816 of 128,049,152


def test_comparison_page(browser, zoo_profile, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    c = align([zoo_profile("inception-naive"), zoo_profile("inception")])
    page_path = html.write_page(tmp_path / "cmp.html", lambda src: html.comparison_page(c, src))
    page, seen = _open(browser, page_path)
    traces = _traces_per_chart(page)
    assert traces == {"totals": 2, "blocks-macs": 2, "blocks-params": 2}
    cell = page.get_attribute('#ratios td[data-model="inception"][data-metric="macs"]', "data-value")
    assert cell == "128049152"
    branch3 = page.inner_text('#blocks tr[data-block="branch3"]')
    assert "120,422,400" in branch3 and "12,443,648" in branch3 and "9.7x less" in branch3
    _only_local(seen["requests"], {page_path.resolve().as_uri()})
    assert seen["errors"] == []


def test_hostile_names_stay_text(browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = profile(build(), (1, 3, 8, 8))
    page_path = html.write_page(tmp_path / "evil.html", lambda src: html.profile_page(result, src))
    page, seen = _open(browser, page_path)
    assert page.locator("img").count() == 0
    assert seen["dialogs"] == []
    assert EVIL_NAME in page.inner_text("#layers")
    assert EVIL_TYPE in page.inner_text("#layers")
    box = page.locator('[data-chart="macs-bars"] g.point path').first.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_timeout(200)
    hover = page.eval_on_selector('[data-chart="macs-bars"] .hoverlayer', 'e => e.textContent')
    assert EVIL_NAME in hover
    assert page.locator("img").count() == 0 and seen["dialogs"] == []
    _only_local(seen["requests"], {page_path.resolve().as_uri()})


def test_shared_plotlyjs_directory(browser, zoo_profile, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    shared = tmp_path / "assets"
    pages = []
    for name in ("inception", "conv5x5"):
        result = zoo_profile(name)
        pages.append(html.write_page(tmp_path / "out" / f"{name}.html",
                                     lambda src, r=result: html.profile_page(r, src), shared))
    js = shared / html.PLOTLY_FILE
    assert js.exists() and js.stat().st_size > 1_000_000
    assert all(p.stat().st_size < 500_000 for p in pages)  # plotly.js not embedded
    page, seen = _open(browser, pages[0])
    assert all(count >= 1 for count in _traces_per_chart(page).values())
    _only_local(seen["requests"], {pages[0].resolve().as_uri(), js.resolve().as_uri()})
    assert seen["errors"] == []


@pytest.mark.parametrize("name", ["vgg16", "resnet50"])
def test_big_models_render(browser, zoo_profile, name: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = zoo_profile(name)
    page_path = html.write_page(tmp_path / f"{name}.html", lambda src: html.profile_page(result, src))
    page, seen = _open(browser, page_path)
    assert all(count >= 1 for count in _traces_per_chart(page).values())
    assert seen["errors"] == []
