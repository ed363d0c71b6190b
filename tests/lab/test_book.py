"""The static book: a built site is checked page by page (links, images, scripts, network loads, widgets left as
text, Markdown tables left as pipes), a widget whose module the site cannot hold shows its stored static view, the
search page's excerpts come from the site itself, the real book builds from the stored notebooks, and in headless
Chromium the check names each fault planted in a small site (a console error, a failed request, a widget error,
raw table pipes, an output past its column, search results without excerpts) while every page of the real book
loads without one."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from stif_core.lab.book import (
    SEARCH_TEXTS,
    WIDGET_VIEW,
    _version_fits,
    book_config,
    browser_check,
    build,
    check_site,
    static_widget_views,
    write_search_texts,
)
from stif_core.lab.report import suite

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium here (Debian: apt install chromium)")


def page(folder: Path, name: str, body: str) -> Path:
    path = folder / name
    path.write_text(f"<html><head><script src='_static/a.js'></script></head><body>{body}</body></html>")
    return path


def test_check_site_names_what_does_not_resolve(tmp_path):
    (tmp_path / "_static").mkdir()
    (tmp_path / "_static" / "a.js").write_text("")
    (tmp_path / "fig.png").write_bytes(b"")
    index = page(tmp_path, "index.html", "<a href='other.html#top'>x</a><img src='fig.png'><a href='#here'>y</a>"
                                         "<a href='https://example.org/x'>z</a>")
    page(tmp_path, "other.html", "<script>var t = 'VBox(children=()';</script>")  # inside a script: not shown
    assert check_site(index) == []
    page(tmp_path, "broken.html", "<img src='missing.png'><a href='gone.html'>g</a><p>VBox(children=(IntSlider(</p>")
    assert check_site(index) == ["broken.html: missing.png does not resolve", "broken.html: gone.html does not resolve",
                                 "broken.html: a widget is shown as its text form"]


def test_check_site_names_raw_table_pipes_and_network_loads(tmp_path):
    """A Markdown table the converter left as text, and a script, style sheet or widget CDN fetched from the network
    (the site is read offline; unless it was built without npm), are problems; pipes inside code and links to other
    sites are not."""
    index = page(tmp_path, "index.html", "<pre>| a | b |\n|---|---|</pre><p>x <code>|--|--|</code></p>"
                                         "<a href='https://example.org'>a site</a>")
    (tmp_path / "_static").mkdir()
    (tmp_path / "_static" / "a.js").write_text("")
    (tmp_path / "_widgets").mkdir()  # the site holds its widget manager: nothing may come from the network
    assert check_site(index) == []
    page(tmp_path, "raw.html", "<p>| reading | where |\n|\u2014|\u2014|\n| gate | eq. 8 |</p>")
    page(tmp_path, "cdn.html", "<script data-jupyter-widgets-cdn='https://cdn.jsdelivr.net/npm/' "
                               "src='https://cdn.jsdelivr.net/npm/x/embed.js'></script>"
                               "<link rel='stylesheet' href='//cdn.example.org/a.css'>")
    assert check_site(index) == [
        "cdn.html: loads https://cdn.jsdelivr.net/npm/x/embed.js from the network (the site must work offline)",
        "cdn.html: loads https://cdn.jsdelivr.net/npm/ from the network (the site must work offline)",
        "cdn.html: loads //cdn.example.org/a.css from the network (the site must work offline)",
        "raw.html: 1 Markdown table(s) left as raw pipes in the text"]
    (tmp_path / "_widgets").rmdir()  # built without npm: the manager comes from a CDN by design
    assert check_site(index) == ["raw.html: 1 Markdown table(s) left as raw pipes in the text"]


def test_the_config_reads_markdown_outputs_with_tables_and_names_the_colour_mode():
    """``display(Markdown(table))`` outputs are read as GitHub Markdown (MyST-NB's default, CommonMark, has no
    tables), and the theme gets a valid colour mode (left empty, its script logs an error on every page)."""
    config = book_config(None)["sphinx"]["config"]
    assert config["nb_render_markdown_format"] == "gfm"
    assert config["html_context"]["default_mode"] in ("light", "dark", "auto")
    assert "stif_book.css" in config["html_css_files"]


def test_saved_widget_versions_and_the_installed_module():
    assert _version_fits("~0.11.*", "0.11.0") and _version_fits("0.11.0", "0.11.3")
    assert not _version_fits("~0.11.*", "0.12.0") and not _version_fits("~0.11.*", "1.11.0")
    assert _version_fits("^1.2.0", "1.5.0") and not _version_fits("^1.2.0", "2.0.0")
    assert not _version_fits("", "0.11.0")


def widget_notebook() -> dict:
    """A notebook with a slider (the manager's own module), a box widget (anywidget) and a box holding it."""
    def model(module, name, **state):
        return {"model_module": module, "model_module_version": "~0.11.*" if module == "anywidget" else "2.0.0",
                "model_name": name, "state": {"_view_module": module, **state}}

    state = {"s1": model("@jupyter-widgets/controls", "IntSliderModel", value=3),
             "aw": model("anywidget", "AnyModel", _esm="export default {}"),
             "vb": model("@jupyter-widgets/controls", "VBoxModel", children=["IPY_MODEL_aw", "IPY_MODEL_s1"])}

    def shown(mid, **more):
        return {"output_type": "display_data", "metadata": {},
                "data": {WIDGET_VIEW: {"model_id": mid, "version_major": 2, "version_minor": 0},
                         "text/plain": f"[widget {mid}]", **more}}

    cells = [{"cell_type": "code", "source": "", "metadata": {}, "execution_count": i, "outputs": [shown(mid)]}
             for i, mid in enumerate(["s1", "vb"], 1)]
    cells.append({"cell_type": "code", "source": "", "metadata": {}, "execution_count": 3,
                  "outputs": [shown("aw", **{"image/png": "iVBORw0KGgo="})]})
    return {"cells": cells, "metadata": {"widgets": {"application/vnd.jupyter.widget-state+json": {
        "version_major": 2, "version_minor": 0, "state": state}}}, "nbformat": 4, "nbformat_minor": 5}


def test_a_widget_whose_module_the_site_lacks_shows_its_stored_view():
    """Without anywidget in the site, its widget and the box holding it show their stored representations after a
    note (never a broken widget), and leave the saved state (the manager would look for the module); the slider
    stays live. With anywidget in the site, nothing changes."""
    nb = widget_notebook()
    held = {"@jupyter-widgets/base", "@jupyter-widgets/controls", "@jupyter-widgets/output"}
    assert static_widget_views(nb, held | {"anywidget"}) == [] and nb == widget_notebook()
    assert sorted(static_widget_views(nb, held)) == ["aw", "vb"]
    state = nb["metadata"]["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    assert list(state) == ["s1"]
    slider, box, image = (cell["outputs"] for cell in nb["cells"])
    assert WIDGET_VIEW in slider[0]["data"]
    for outputs in (box, image):
        note, stored = outputs
        assert "stif-widget-note" in note["data"]["text/html"] and WIDGET_VIEW not in stored["data"]
    assert image[1]["data"]["image/png"] == "iVBORw0KGgo=" and box[1]["data"]["text/plain"] == "[widget vb]"


def test_the_search_page_gets_each_page_text(tmp_path):
    """The search page's excerpts come from the site: each page's main block as text and section anchors (no
    script, no heading link), loaded by ``search.html`` only."""
    page(tmp_path, "search.html", "<div id='search-results'></div>")
    page(tmp_path, "a.html", "<nav>menu</nav><main role='main'><section id='the-ledger'><h2>The ledger"
                             "<a class='headerlink' href='#the-ledger'>#</a></h2>\n<p>Each   reading &amp; its "
                             "switch.<br>Next</p><script>var hidden = 1;</script></section></main>")
    write_search_texts(tmp_path)
    script = (tmp_path / SEARCH_TEXTS).read_text()
    texts = json.loads(re.match(r"window.STIF_PAGE_TEXTS = (.*);\n", script).group(1))
    assert texts["a.html"] == '<div id="the-ledger">The ledger Each reading &amp; its switch.Next</div>'
    assert f'<script src="{SEARCH_TEXTS}"></script></head>' in (tmp_path / "search.html").read_text()
    assert SEARCH_TEXTS not in (tmp_path / "a.html").read_text()


def planted_site(folder: Path) -> Path:
    """A small site with one fault on each page but ``clean.html``."""
    article = "<article class='bd-article' style='width: 600px'>{}</article>"
    pages = {
        "clean.html": "<p>Fine.</p><pre>| a | b |\n|---|---|</pre><div style='overflow-x: auto'>"
                      "<table style='width: 2000px'><tr><td>wide, in a scrolling box</td></tr></table></div>",
        "widget_error.html": "<div class='cell_output'><div class='jupyter-widgets jupyter-widgets-error-widget'>"
                             "<pre>[Open Browser Console for more detailed log - Double click to close this message]"
                             "\nClick to show javascript error.</pre></div></div>",
        "raw_table.html": "<p>| reading | where |\n|\u2014|\u2014|\n| gate | eq. 8 |</p>",
        "failed_request.html": "<p>A script that is not there.</p><script src='_widgets/anywidget.js'></script>",
        "console_error.html": "<script>console.error('Got invalid theme mode: . Resetting to auto.');</script>",
        "wide_output.html": "<div class='cell_output' style='overflow: hidden'><table style='width: 2000px'>"
                            "<tr><td>cut off</td></tr></table></div>",
        "search.html": "<div id='search-results'><p class='search-summary'>Search finished, found 1 page(s) "
                       "matching the search query.</p><ul class='search'><li><a href='clean.html'>Clean</a>"
                       "</li></ul></div>",
    }
    for name, body in pages.items():
        (folder / name).write_text(f"<!DOCTYPE html><html><head><meta charset='utf-8'></head><body>"
                                   f"{article.format(body)}</body></html>", encoding="utf-8")
    (folder / "index.html").write_text("<html><body><a href='clean.html'>start</a></body></html>")
    return folder / "index.html"


@needs_chromium
@pytest.mark.slow
def test_the_browser_check_names_each_planted_fault(tmp_path):
    rows = {row["page"]: row["problems"] for row in browser_check(planted_site(tmp_path), chromium=CHROMIUM)}
    assert rows.pop("clean.html") == []
    expected = {"widget_error.html": "a widget shows an error: [Open Browser Console",
                "raw_table.html": "a Markdown table left as raw pipes: | reading | where |",
                "failed_request.html": "failed request: file://",
                "console_error.html": "console error: Got invalid theme mode",
                "wide_output.html": "wider than its column and not in a scrolling box: table",
                "search.html?q=memory": "1 of 1 search results without a text excerpt"}
    assert set(rows) == set(expected)
    for name, fault in expected.items():
        assert any(line.startswith(f"{name}: {fault}") for line in rows[name]), (name, rows[name])
    assert any("anywidget.js" in line for line in rows["failed_request.html"])
    assert any(line.startswith("failed_request.html: console error: Failed to load resource")
               for line in rows["failed_request.html"])


@pytest.mark.slow
@pytest.mark.subprocess
def test_the_book_builds_from_the_stored_notebooks(tmp_path):
    index = build(tmp_path / "book", progress=False)
    site = index.parent
    assert index.is_file() and check_site(index) == []
    for nb in suite(ablation=True):
        assert (site / f"{nb.stem}.html").is_file(), nb.name
    text = (site / "05_fusion.html").read_text()
    assert "application/vnd.jupyter.widget-state+json" in text  # the widgets' saved state travels with the page
    pages = {p.name: p.read_text(encoding="utf-8") for p in site.glob("*.html")}
    for name, html in pages.items():  # offline: no CDN anywhere, and a valid colour mode for the theme's script
        assert not re.search(r"cdn\.|jsdelivr|unpkg", html), name
        if name == "index.html":  # a redirect to intro.html
            continue
        assert 'localStorage.getItem("mode") || "light"' in html, name
        assert "stif_book.css" in html, name
    ledger = pages["11_readings.html"]  # the two ledger tables (display(Markdown(...)) outputs) as tables
    tables = re.findall(r"<table.*?</table>", ledger, re.S)
    assert any("eq2_bounds" in t for t in tables) and any("eq4_pooling_axis" in t for t in tables)
    assert "| reading | where" not in re.sub(r"<pre>.*?</pre>", "", ledger, flags=re.S)
    assert "overflow-x: auto" in (site / "_static" / "stif_book.css").read_text()
    texts = (site / SEARCH_TEXTS).read_text(encoding="utf-8")
    assert '"11_readings.html": ' in texts and "readings ledger" in texts and SEARCH_TEXTS in pages["search.html"]
    video = pages["12_your_video.html"]
    if (site / "_widgets" / "embed-amd.js").is_file():  # npm reached its registry: the manager is local
        assert "_widgets/embed-amd.js" in text
        assert "_widgets/embed-amd.js" not in pages["intro.html"]  # only where a widget is
        if (site / "_widgets" / "anywidget.js").is_file():  # the box widget's module, from the anywidget installed
            assert '"anywidget": "_widgets/anywidget"' in (site / "_widgets" / "modules.js").read_text()
            assert "_widgets/modules.js" in video and "stif-widget-note" not in video
        else:
            assert "stif-widget-note" in video
    else:
        assert "stif-widget-note" in video  # the manager from a CDN: the box widget shows its stored view
    if CHROMIUM is None:
        pytest.skip("no Chromium here (Debian: apt install chromium): the site was checked without a browser")
    rows = browser_check(index, tmp_path / "shots", CHROMIUM)
    assert {r["page"] for r in rows} >= {f"{nb.stem}.html" for nb in suite(ablation=True)}
    for row in rows:
        assert row["problems"] == [], row["problems"]
        assert row["errors"] == row["console"] == row["failed"] == row["broken"] == [], row
        assert row["unrendered"] == 0 or "results" in row, row  # a search excerpt is page text, its TeX raw
    typeset = {r["page"]: r["equations"] for r in rows}
    assert min(typeset[f"{n:02d}_{s}.html"] for n, s in [(2, "backbone_memory"), (3, "temporal"), (5, "fusion")]) > 10
    drawn = {r["page"]: (r["widgets"], r["drawn"]) for r in rows}
    assert drawn["05_fusion.html"] == (1, 1)
    if (site / "_widgets" / "anywidget.js").is_file():
        assert drawn["12_your_video.html"] == (2, 2)  # the box widget drawn, offline
    search = next(r for r in rows if "results" in r)
    assert search["results"] > 5 and search["excerpts"] == search["results"]


def test_the_screenshots_folder_is_an_output_folder_of_the_tool(tmp_path):
    """``--browser-check DIR`` writes only where ``--out`` may: a folder of the user's files is refused before any
    browser starts, and nothing in it changes."""
    shots = tmp_path / "photos"
    shots.mkdir()
    (shots / "01_tour.jpg").write_text("my holiday photo")
    with pytest.raises(ValueError, match="holds files this package did not write"):
        browser_check(tmp_path / "index.html", shots)
    assert (shots / "01_tour.jpg").read_text() == "my holiday photo"
