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
    # every module call, and a (self) row for each of the 9 Inception modules: its torch.cat
    assert page.locator("#layers tbody tr").count() == len(result.layers) + 9
    assert page.locator("#layers tbody tr.own").count() == 9
    page.fill("input.filter", "inception5b.branch3")
    visible = page.eval_on_selector_all("#layers tbody tr", "rows => rows.filter(r => r.style.display !== 'none').length")
    # branch3; reduce with its conv and relu; conv (the 5×5) with its conv and relu: 7 rows
    assert visible == 7
    _only_local(seen["requests"], {page_path.resolve().as_uri()})
    assert seen["errors"] == []
    page.screenshot(path=str(tmp_path / "googlenet.png"), full_page=True)


def _column(page, label: str) -> str:  # type: ignore[no-untyped-def]
    """The CSS selector of the layer table's column headed ``label``."""
    heads = page.eval_on_selector_all("#layers th", "ths => ths.map(t => t.textContent)")
    return f"#layers th:nth-child({heads.index(label) + 1})"


def test_sorting_the_layer_table(browser, zoo_profile, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = zoo_profile("inception")
    page_path = html.write_page(tmp_path / "i.html", lambda src: html.profile_page(result, src))
    page, _ = _open(browser, page_path)
    page.click(_column(page, "MACs"))  # numbers: the largest first
    first = page.inner_text("#layers tbody tr:first-child td:nth-child(2)").strip()
    assert first == "<root>"  # the root holds every MAC
    second = page.inner_text("#layers tbody tr:nth-child(2) td:nth-child(2)").strip()
    assert second == "branch2"  # 101,154,816 of 128,049,152
    page.click(_column(page, "MACs"))  # again: the smallest first
    assert page.inner_text("#layers tbody tr:first-child td:nth-child(2)").strip() != "<root>"
    page.click(_column(page, "Layer"))  # text: A to Z on the first click, by path: the model's is empty
    assert page.inner_text("#layers tbody tr:first-child td:nth-child(2)").strip() == "<root>"
    assert page.inner_text("#layers tbody tr:nth-child(2) td:nth-child(2)").strip() == "(self)"
    # the concatenation, outside any branch: 256 channels × 28·28 × 4 bytes written
    assert page.inner_text(f"#layers tbody tr:nth-child(2) td:nth-child({_index(page, 'Tensors written')})") == "784.00 KiB"


def _index(page, label: str) -> int:  # type: ignore[no-untyped-def]
    heads = page.eval_on_selector_all("#layers th", "ths => ths.map(t => t.textContent)")
    return int(heads.index(label)) + 1


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


def _chart_data(page, chart: str):  # type: ignore[no-untyped-def]
    """The plotly traces a chart drew, as the browser holds them."""
    return page.evaluate("id => document.getElementById(id).data.map(t => ({x: t.x, y: t.y, name: t.name, "
                         "text: t.text, color: t.marker && t.marker.color}))", f"fig-{chart}")


def _overlaps(a: dict, b: dict) -> bool:
    return not (a["x"] + a["width"] <= b["x"] or b["x"] + b["width"] <= a["x"]
                or a["y"] + a["height"] <= b["y"] or b["y"] + b["height"] <= a["y"])


def test_googlenet_page_explains_at_a_glance(browser, zoo_profile, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = zoo_profile("googlenet")
    page_path = html.write_page(tmp_path / "g.html", lambda src: html.profile_page(result, src))
    page, seen = _open(browser, page_path)
    (bars,) = _chart_data(page, "macs-bars")
    blocks, names = bars["x"]
    # conv1, conv2_reduce, conv2, six convolutions in each of the 9 Inception modules, fc: 58 bars, none empty
    assert len(names) == 3 + 9 * 6 + 1 and all(bars["y"])
    assert "inception4e" in blocks and "branch2.conv" in names  # labelled, the block names on the axis
    colors = {b: {c for b2, c in zip(blocks, bars["color"]) if b2 == b} for b in blocks if b.strip("\u200b")}
    assert all(len(c) == 1 for c in colors.values()) and colors["inception3a"] != colors["inception3b"]
    # the layer table fits its box: no column cut off
    fits = page.eval_on_selector("#layer-table .scroll", "e => e.scrollWidth <= e.clientWidth")
    assert fits
    # axis titles are words, not metric keys
    titles = page.eval_on_selector_all(".g-xtitle, .g-ytitle, .g-y2title", "els => els.map(e => e.textContent)")
    assert titles and not [t for t in titles if any(key in t for key in ("activation_bytes", "weight_bytes", "macs"))]
    # each memory figure says what it counts
    meanings = page.inner_text("#memory-meanings")
    assert "Tensors written" in meanings and "Peak memory, taken apart" in meanings and "Output size" in meanings
    assert seen["errors"] == []


def test_the_toolbar_covers_no_switch(browser, zoo_profile, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = zoo_profile("resnet50")
    page_path = html.write_page(tmp_path / "r.html", lambda src: html.profile_page(result, src))
    page, _ = _open(browser, page_path)
    for chart in ("macs-bars", "by-type", "memory"):
        page.hover(f'[data-chart="{chart}"] .plot-container')
        page.wait_for_timeout(200)
        toolbar = page.locator(f'[data-chart="{chart}"] .modebar').bounding_box()
        buttons = page.locator(f'[data-chart="{chart}"] .updatemenu-button')
        assert toolbar is not None and buttons.count() >= 2
        for i in range(buttons.count()):
            box = buttons.nth(i).bounding_box()
            assert box is not None and not _overlaps(toolbar, box), chart


def test_inception_page_walks_the_branches_and_shows_memory(browser, zoo_profile, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = zoo_profile("inception")
    page_path = html.write_page(tmp_path / "i.html", lambda src: html.profile_page(result, src))
    page, seen = _open(browser, page_path)
    walk = {t["name"]: t["y"] for t in _chart_data(page, "shape-walk")}
    assert walk["branch3"] == [192, 16, 32]  # 1×1 to 16, then 5×5 to 32
    title = page.text_content('[data-chart="shape-walk"] .gtitle') or ""
    assert "parallel branches" in title and "falls" not in title
    output, written = _chart_data(page, "memory")
    pool = list(zip(*output["x"])).index(("branch4", "pool"))
    assert output["y"][pool] == 602_112  # 192·28·28 × 4 B returned
    assert written["y"][pool] == 602_112 + 1_204_224  # and the int64 indices: 192·28·28 × 8 B
    assert output["x"][1][-1] == "(self)" and written["y"][-1] == 802_816  # the concatenation: 256·28·28 × 4 B
    sunburst = _chart_data(page, "sunburst")[0]
    assert "79.0%" in sunburst["text"]  # branch2: 101,154,816 / 128,049,152 MACs
    drawn = page.eval_on_selector_all('[data-chart="sunburst"] .slicetext', "els => els.map(e => e.textContent)")
    assert any(text.endswith("79.0%") for text in drawn)  # written on the slice
    assert seen["errors"] == []


def test_comparison_blocks_are_one_set(browser, zoo_profile, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    c = align([zoo_profile("vgg16"), zoo_profile("vgg19")])
    page_path = html.write_page(tmp_path / "v.html", lambda src: html.comparison_page(c, src))
    page, seen = _open(browser, page_path)
    rows = page.eval_on_selector_all("#blocks tbody tr", "rows => rows.map(r => r.dataset.block)")
    # vgg19's 16 convolutions (vgg16's 13 among them) and the 3 conv-ified fully connected layers
    assert len(rows) == 16 + 3 and "features" not in rows and not [r for r in rows if "relu" in r or "pool" in r]
    for chart in ("blocks-macs", "blocks-params"):
        blocks, names = _chart_data(page, chart)[0]["x"]
        assert names == [r.partition(".")[2] for r in rows]  # the same set, the parent never beside its children
        assert set(blocks) == {"features", "classifier"}
    assert seen["errors"] == []
