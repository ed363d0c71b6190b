"""The static book: a built site is checked page by page (links, images, scripts, widgets left as text), the real
book builds from the stored notebooks, and in headless Chromium every page loads without an error, its equations
typeset and its images drawn."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from stif_core.lab.book import browser_check, build, check_site
from stif_core.lab.report import suite


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


@pytest.mark.slow
@pytest.mark.subprocess
def test_the_book_builds_from_the_stored_notebooks(tmp_path):
    index = build(tmp_path / "book", progress=False)
    assert index.is_file() and check_site(index) == []
    for nb in suite(ablation=True):
        assert (index.parent / f"{nb.stem}.html").is_file(), nb.name
    text = (index.parent / "05_fusion.html").read_text()
    assert "application/vnd.jupyter.widget-state+json" in text  # the widgets' saved state travels with the page
    if (index.parent / "_widgets" / "embed-amd.js").is_file():  # npm reached its registry: the manager is local
        assert "_widgets/embed-amd.js" in text
        assert "_widgets/embed-amd.js" not in (index.parent / "intro.html").read_text()  # only where a widget is
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("no Chromium here (Debian: apt install chromium): the site was checked without a browser")
    rows = browser_check(index, tmp_path / "shots", browser)
    assert {r["page"] for r in rows} >= {f"{nb.stem}.html" for nb in suite(ablation=True)}
    for row in rows:
        assert row["errors"] == [] and row["broken"] == [] and row["unrendered"] == 0, row
        assert all("anywidget" in url for url in row["failed"]), row  # only the box widget's CDN module may fail
    typeset = {r["page"]: r["equations"] for r in rows}
    assert min(typeset[f"{n:02d}_{s}.html"] for n, s in [(2, "backbone_memory"), (3, "temporal"), (5, "fusion")]) > 10
    drawn = {r["page"]: (r["widgets"], r["drawn"]) for r in rows}
    assert drawn["05_fusion.html"] == (1, 1)


def test_the_screenshots_folder_is_an_output_folder_of_the_tool(tmp_path):
    """``--browser-check DIR`` writes only where ``--out`` may: a folder of the user's files is refused before any
    browser starts, and nothing in it changes."""
    shots = tmp_path / "photos"
    shots.mkdir()
    (shots / "01_tour.jpg").write_text("my holiday photo")
    with pytest.raises(ValueError, match="holds files this package did not write"):
        browser_check(tmp_path / "index.html", shots)
    assert (shots / "01_tour.jpg").read_text() == "my holiday photo"
