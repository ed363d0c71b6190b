"""The suite as a static book (``python -m stif_core book``, ``make book``): the notebooks as stored (their outputs
are those ``make references`` executed; nothing is run again) and ``book/intro.md`` built into an HTML site by
Jupyter Book 1 (Sphinx and MyST-NB): a table of contents, search, every figure, the equations rendered by a MathJax
that ships inside the site (``sphinx-mathjax-offline``), and every widget's saved view drawn by the ipywidgets
HTML manager, which is put in the site too when npm can fetch it (else the pages load it from a CDN). Sphinx's
warnings fail the build, so a broken reference does not pass unseen.

``check_site`` tests a built site without a browser (every local link, image and script resolves; no widget left
as its text form); ``browser_check`` opens every page in headless Chromium (through Playwright) and counts what
rendered: equations, images, widgets, and any page error or failed request.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

from ..files import checked_target, output_folder, read_json, replace_folder
from ..paths import project_dir
from .report import suite

# The ipywidgets HTML manager for ipywidgets 8 (controls 2.0.0 models) and the RequireJS that loads it.
WIDGET_PACKAGES = {"requirejs@2.3.7": ("require.js",),
                   "@jupyter-widgets/html-manager@1.0.14": ("dist/embed-amd.js", "dist/*.woff2", "dist/*.woff",
                                                            "dist/*.ttf", "dist/*.eot", "dist/*.svg")}
WIDGETS_CDN = "https://cdn.jsdelivr.net/npm/"  # where the manager looks for widget packages it does not hold
# The manager typesets its labels with MathJax 2's ``MathJax.Hub.Queue``; the site loads MathJax 3, which typesets
# with ``MathJax.typesetPromise``. Defined once the deferred MathJax has replaced ``window.MathJax``.
MATHJAX2_HUB = """document.addEventListener("DOMContentLoaded", function () {
  if (window.MathJax && !window.MathJax.Hub) {
    window.MathJax.Hub = {Queue: function () {
      if (window.MathJax.typesetPromise) { window.MathJax.typesetPromise(); }
    }};
  }
});
"""
# Put at the end of the head of each page with a widget: after the theme's scripts (a UMD script loaded after
# RequireJS registers itself as an anonymous module, a page error), RequireJS, the shim, then the manager.
WIDGET_SCRIPTS = ('<script src="_widgets/require.js"></script><script src="_widgets/mathjax2_hub.js"></script>'
                  f'<script data-jupyter-widgets-cdn="{WIDGETS_CDN}" src="_widgets/embed-amd.js"></script>')
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
# Jupyter Book's Sphinx extensions without sphinx-thebe (live code through Binder, which a static book does not
# offer; it also declared its script's constants twice on every page, a page error), with MathJax bundled.
EXTENSIONS = ["sphinx_togglebutton", "sphinx_copybutton", "myst_nb", "jupyter_book", "sphinx_comments",
              "sphinx_external_toc", "sphinx.ext.intersphinx", "sphinx_design", "sphinx_book_theme",
              "sphinx-mathjax-offline"]


def intro_page() -> Path:
    path = project_dir() / "book" / "intro.md"
    if not path.is_file():
        raise FileNotFoundError(f"no book introduction at {path}; run from the project folder or set $STIF_PROJECT")
    return path


def fetch_widget_scripts(cache: Path) -> dict[str, Path] | None:
    """The widget scripts and fonts as files (name -> path), fetched once with ``npm pack`` into ``cache``; None
    when npm is missing or cannot reach its registry."""
    npm = shutil.which("npm")
    if npm is None:
        return None
    cache.mkdir(parents=True, exist_ok=True)
    files = {}
    for spec, members in WIDGET_PACKAGES.items():
        name, version = spec.rsplit("@", 1)
        tarball = cache / f"{name.lstrip('@').replace('/', '-')}-{version}.tgz"
        if not tarball.is_file():
            done = subprocess.run([npm, "pack", spec, "--pack-destination", str(cache)], capture_output=True,
                                  text=True, timeout=300)
            if done.returncode or not tarball.is_file():
                return None
        folder = cache / tarball.stem
        if not folder.is_dir():
            with tarfile.open(tarball) as tar:
                tar.extractall(folder, filter="data")
        for pattern in members:
            for path in (folder / "package").glob(pattern):
                files[path.name] = path
    return files


def book_config(widget_scripts: dict[str, Path] | None) -> dict:
    """Jupyter Book's ``_config.yml``: stored outputs only, warnings fail the build, local MathJax, and the widget
    scripts from the site's own ``_static`` folder when they were fetched."""
    config = {"title": "STIF notebook suite", "author": "the STIF suite developers", "only_build_toc_files": True,
              "execute": {"execute_notebooks": "off"},
              "parse": {"myst_enable_extensions": ["dollarmath", "amsmath"]},
              "sphinx": {"config": {"extensions": EXTENSIONS}},
              "html": {"use_repository_button": False}}
    if widget_scripts:  # MyST-NB adds them from a CDN, and to every page after the first with a widget
        config["sphinx"]["config"]["nb_ipywidgets_js"] = {}
    return config


def check_notebooks(notebooks: list[Path]) -> None:
    """Each notebook read and validated by ``nbformat`` (format 4) before anything is built: ``ValueError`` naming
    the first one that is not a valid notebook, where in it and why (Sphinx would stop on it with a traceback that
    never names it)."""
    import nbformat

    for nb in notebooks:
        raw = read_json(nb, "notebook")  # a JSON error with its line and column
        if not isinstance(raw, dict):
            raise ValueError(f"notebook {nb} holds a JSON {type(raw).__name__}, not a notebook (an object)")
        try:
            nbformat.validate(nbformat.reads(json.dumps(raw), as_version=4))
        except nbformat.ValidationError as err:
            where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path).lstrip(".")
            why = err.message if len(err.message) <= 200 else "not valid under the notebook format's schema"
            raise ValueError(f"notebook {nb} is not a valid notebook: {where or 'top level'}: {why}") from None
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise ValueError(f"notebook {nb} is not a valid notebook: {str(err).strip().splitlines()[0]}") from None


def build(out: str | Path = "reports/book", progress: bool = True) -> Path:
    """Build the book into ``out``, which it replaces only when the build succeeded and only when ``book`` made
    it (``files.replace_folder``); returns its ``index.html``."""
    notebooks = suite(ablation=True)
    check_notebooks(notebooks)
    scripts = fetch_widget_scripts(project_dir() / "build" / "npm")
    if scripts is None:
        print("npm could not fetch the ipywidgets HTML manager: the pages load it from a CDN (widgets draw when "
              "the reader is online)", flush=True)
    site = replace_folder(out, "book", lambda new: build_site(new, notebooks, scripts, progress))
    return site / "index.html"


def build_site(out: Path, notebooks: list[Path], scripts: dict[str, Path] | None, progress: bool) -> None:
    """The site of ``notebooks`` built into the empty folder ``out`` (``build``)."""
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "source"
        source.mkdir()
        shutil.copy(intro_page(), source / "intro.md")
        for nb in notebooks:
            shutil.copy(nb, source / nb.name)
        # JSON is YAML: no YAML writer needed
        (source / "_config.yml").write_text(json.dumps(book_config(scripts), indent=2))
        (source / "_toc.yml").write_text(json.dumps(
            {"format": "jb-book", "root": "intro", "chapters": [{"file": nb.stem} for nb in notebooks]}, indent=2))
        command = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()", "build", str(source),
                   "--path-output", str(Path(tmp) / "site"), "--warningiserror", "--keep-going", "--quiet"]
        if progress:
            print(f"building the book from {len(notebooks)} notebooks ...", flush=True)
        done = subprocess.run(command, capture_output=True, text=True)  # its own closing words name the temporary copy
        if done.returncode:
            raise ValueError(f"the book did not build (Jupyter Book exit status {done.returncode}):\n"
                             + (done.stdout + done.stderr)[-3000:])
        shutil.copytree(Path(tmp) / "site" / "_build" / "html", out, dirs_exist_ok=True)
    if scripts:  # beside Sphinx's _static folder, whose scripts some extension adds to every page
        widgets = out / "_widgets"
        widgets.mkdir()
        fonts = out / "@jupyter-widgets" / "html-manager" / "dist"  # where the manager asks for its icon fonts
        fonts.mkdir(parents=True)
        for name, path in scripts.items():
            shutil.copy(path, (widgets if path.suffix == ".js" else fonts) / name)
        (widgets / "mathjax2_hub.js").write_text(MATHJAX2_HUB)
        for page in out.glob("*.html"):
            text = page.read_text(encoding="utf-8")
            if WIDGET_VIEW in text:
                page.write_text(text.replace("</head>", WIDGET_SCRIPTS + "</head>", 1), encoding="utf-8")


class _Links(HTMLParser):
    """Local references of one page (img src, a href, script src, link href) and its visible text."""

    def __init__(self):
        super().__init__()
        self.refs, self.text, self.hidden = [], [], 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("script", "style"):
            self.hidden += 1
        ref = attrs.get("src") if tag in ("img", "script") else attrs.get("href") if tag in ("a", "link") else None
        if ref:
            self.refs.append(ref)

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self.hidden -= 1

    def handle_data(self, data):
        if not self.hidden:
            self.text.append(data)


def check_site(index: Path) -> list[str]:
    """Problems of a built site: a local link, image or script that does not resolve, or a widget shown as its
    text form (``VBox(children=...``) instead of its view. An empty list: none found."""
    root = Path(index).parent
    problems = []
    for page in sorted(root.rglob("*.html")):
        if "_static" in page.relative_to(root).parts:
            continue
        parser = _Links()
        parser.feed(page.read_text(encoding="utf-8"))
        for ref in parser.refs:
            parts = urlsplit(ref)
            if parts.scheme or ref.startswith(("#", "//", "mailto:")) or not parts.path:
                continue
            if not (page.parent / unquote(parts.path)).exists():
                problems.append(f"{page.relative_to(root)}: {ref} does not resolve")
        text = " ".join(parser.text)
        if re.search(r"\b[VH]Box\(children=", text):
            problems.append(f"{page.relative_to(root)}: a widget is shown as its text form")
    return problems


PAGE_PROBE = """() => ({
    equations: document.querySelectorAll('mjx-container').length,
    unrendered: (document.body.innerText.match(/\\$\\$|\\\\\\(|\\\\\\[/g) || []).length,
    images: document.images.length,
    broken: Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src),
    widgets: document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]').length,
    drawn: Array.from(document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]'))
        .filter(s => s.parentElement.querySelector('.lm-Widget')).length
})"""


def browser_check(index: Path, screenshots: str | Path | None = None, chromium: str | None = None) -> list[dict]:
    """Open every page of a built site in headless Chromium and report what rendered (one dict per page: equations
    typeset and left raw, images and broken ones, widgets saved and drawn, page errors and failed requests), with a
    screenshot of each page's first screen and of its first widget in ``screenshots``, an output folder of this
    tool's (``files.output_folder``)."""
    if screenshots is None:
        return check_pages(index, None, chromium)
    with output_folder(screenshots, "book", "--browser-check") as folder:
        return check_pages(index, folder, chromium)


def check_pages(index: Path, screenshots: Path | None, chromium: str | None) -> list[dict]:
    """``browser_check``'s work, the screenshots' folder held."""
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    root = Path(index).resolve().parent
    pages = sorted(p for p in root.glob("*.html") if p.name not in ("genindex.html", "search.html", "index.html"))
    chromium = chromium or shutil.which("chromium") or shutil.which("chromium-browser")
    rows = []
    with sync_playwright() as pw:
        try:
            browser = pw.chromium.launch(executable_path=chromium, headless=True,
                                         args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        except PlaywrightError:
            raise ValueError("--browser-check needs Chromium, and none was found (Debian: apt install chromium; or "
                             "python -m playwright install chromium)") from None
        for path in pages:
            page = browser.new_page(viewport={"width": 1300, "height": 900})
            errors, failed = [], []
            page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
            page.on("requestfailed", lambda r, failed=failed: failed.append(r.url))
            page.goto(path.as_uri(), wait_until="load")
            page.wait_for_function("() => !window.MathJax || !window.MathJax.startup || "
                                   "window.MathJax.startup.promise.then(() => true)", timeout=30000)
            page.wait_for_timeout(1500)  # the widget manager draws after load
            row = {"page": path.name, **page.evaluate(PAGE_PROBE), "errors": errors, "failed": failed}
            if screenshots is not None:
                page.screenshot(path=str(checked_target(screenshots / f"{path.stem}.jpg")), quality=80)
                view = page.query_selector(f'script[type="{WIDGET_VIEW}"]')
                if view is not None:  # the first widget as drawn
                    cell = view.evaluate_handle("e => e.parentElement").as_element()
                    cell.scroll_into_view_if_needed()
                    cell.screenshot(path=str(checked_target(screenshots / f"{path.stem}__widget.png")))
            rows.append(row)
            page.close()
        browser.close()
    return rows
