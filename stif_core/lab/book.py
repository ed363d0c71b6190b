"""The suite as a static book (``python -m stif_core book``, ``make book``): the notebooks as stored (their outputs
are those ``make references`` executed; nothing is run again) and ``book/intro.md`` built into an HTML site by
Jupyter Book 1 (Sphinx and MyST-NB): a table of contents, search with text excerpts, every figure, the equations
rendered by a MathJax that ships inside the site (``sphinx-mathjax-offline``), Markdown outputs as GitHub Markdown
(tables), wide outputs in scrolling boxes, and every widget's saved view drawn by the ipywidgets HTML manager, which
is put in the site too when npm can fetch it (else the pages load it from a CDN), with the anywidget module of the
installed ``anywidget`` (a widget whose module the site cannot hold shows its stored static view instead). Sphinx's
warnings fail the build, so a broken reference does not pass unseen.

``check_site`` tests a built site without a browser; ``browser_check`` opens every page in headless Chromium and
names each fault it finds (``problems``).
"""
from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from contextlib import nullcontext
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
# RequireJS registers itself as an anonymous module, a page error), RequireJS, where the site's own widget modules
# are (``require.config``; without it RequireJS asks for ``anywidget.js`` beside the page), the shim, then the
# manager, whose CDN for a module it does not hold is a folder of the site: an offline site fetches nothing.
WIDGET_SCRIPTS = ('<script src="_widgets/require.js"></script><script src="_widgets/modules.js"></script>'
                  '<script src="_widgets/mathjax2_hub.js"></script>'
                  '<script data-jupyter-widgets-cdn="_widgets/" src="_widgets/embed-amd.js"></script>')
# The widget modules the manager holds itself; any other is put in the site (WIDGET_MODULES) or its views are shown
# as their stored static output (``static_widget_views``).
BUILTIN_WIDGET_MODULES = ("@jupyter-widgets/base", "@jupyter-widgets/controls", "@jupyter-widgets/output")
# anywidget (notebook 12's box widget): the AMD build its Python package ships for the classic notebook, which
# defines AnyModel and AnyView on the manager's @jupyter-widgets/base; each widget's own code (``_esm``) and
# style travel in its saved state. Name -> (Python package, file in it).
WIDGET_MODULES = {"anywidget": ("anywidget", "nbextension/index.js")}
# The site's own style sheet: an output wider than the text column (a DataFrame, a long printed table) scrolls in
# its own box (the theme does so for text/html outputs and ``pre``; this holds it for every output kind), and so
# does a display equation wider than a narrow column (the theme centres it in a flex box, which pushed its start
# past the column's left edge, out of reach).
SITE_CSS = """/* stif_core.lab.book: wide outputs, and display equations on a narrow screen, scroll in their own box */
div.cell_output { max-width: 100%; }
div.cell_output > .output, div.cell_output .pst-scrollable-table-container { max-width: 100%; overflow-x: auto; }
div.math { max-width: 100%; overflow-x: auto; overflow-y: hidden; justify-content: safe center; }
p.stif-widget-note { font-style: italic; }
"""
# Sphinx's search page fetches each result's page for its excerpt, which a page opened from file:// may not do (a
# CORS error, a failed request, no excerpts). The page texts go in the site (``SEARCH_TEXTS``, one skeleton of each
# page's main block: its text and the ids of its sections) and answer those requests.
SEARCH_SCRIPT = """(function () {
  var texts = window.STIF_PAGE_TEXTS || {};
  var fetchPage = window.fetch ? window.fetch.bind(window) : null;
  window.fetch = function (resource, options) {
    var url = new URL(typeof resource === "string" ? resource : resource.url, document.baseURI);
    var here = new URL(".", document.baseURI).href;
    var name = url.href.split("#")[0].split("?")[0];
    name = name.indexOf(here) === 0 ? decodeURIComponent(name.slice(here.length)) : null;
    if (name !== null && Object.prototype.hasOwnProperty.call(texts, name)) {
      return Promise.resolve(new Response('<div role="main">' + texts[name] + "</div>",
                                          {headers: {"Content-Type": "text/html"}}));
    }
    return fetchPage(resource, options);
  };
})();
"""
NOTEBOOK_BYTES = 512 * 2**20  # an executed notebook with its figures is read whole; a few MB each today
SEARCH_TEXTS = "_static/stif_search_texts.js"
SEARCH_QUERY = "memory"  # the word browser_check searches for: every module notebook has it
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
    """The widget scripts and fonts (name -> path), fetched once by ``npm pack`` into ``cache``, else None."""
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
    """Jupyter Book's ``_config.yml``: stored outputs only, Markdown outputs read as GitHub Markdown (MyST-NB reads
    them as CommonMark by default, which has no tables: a ``display(Markdown(...))`` table came out as one
    paragraph of pipes), the theme's colour mode named (left empty, its script logs "Got invalid theme mode" on
    every page), the site's style sheet (``SITE_CSS``), and no CDN widget scripts when they were fetched."""
    config = {"title": "STIF notebook suite", "author": "the STIF suite developers", "only_build_toc_files": True,
              "execute": {"execute_notebooks": "off"},
              "parse": {"myst_enable_extensions": ["dollarmath", "amsmath"]},
              "sphinx": {"config": {"extensions": EXTENSIONS, "nb_render_markdown_format": "gfm",
                                    "html_context": {"default_mode": "light"},
                                    "html_css_files": ["stif_book.css"]}},
              "html": {"use_repository_button": False}}
    if widget_scripts:  # MyST-NB adds them from a CDN, and to every page after the first with a widget
        config["sphinx"]["config"]["nb_ipywidgets_js"] = {}
    return config


def _version_fits(wanted: str, version: str) -> bool:
    """Whether ``version`` (``0.11.0``) is one that a widget's saved module version (``~0.11.*``, ``^1.2.0``,
    ``0.11.0``) accepts: the same major and minor (``^`` with a major above 0: the same major)."""
    want = [int(p) for p in re.findall(r"\d+", wanted.split("||")[0])]
    have = [int(p) for p in re.findall(r"\d+", version)]
    if not want or len(have) < 2:
        return False
    keep = 1 if wanted.lstrip().startswith("^") and want[0] > 0 else 2
    return have[:min(keep, len(want))] == want[:keep]


def widget_modules(wanted: dict[str, str] | None = None) -> dict[str, Path]:
    """The widget modules of ``WIDGET_MODULES`` the site can hold (name -> the AMD script): those whose Python
    package is installed, at a version that each saved widget's module version (``wanted``: name -> version)
    accepts."""
    import importlib.metadata
    import importlib.util

    found = {}
    for name, (package, member) in WIDGET_MODULES.items():
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            continue
        script = Path(list(spec.submodule_search_locations)[0]) / member
        try:
            version = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
        if script.is_file() and (wanted is None or name not in wanted or _version_fits(wanted[name], version)):
            found[name] = script
    return found


def _widget_state(nb: dict) -> dict:
    return nb.get("metadata", {}).get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}) \
        .get("state", {})


def wanted_widget_modules(notebooks: list[Path]) -> dict[str, str]:
    """The widget modules the notebooks' saved widgets need beyond the manager's own (name -> saved version)."""
    wanted = {}
    for path in notebooks:
        for model in _widget_state(read_json(path, "notebook", NOTEBOOK_BYTES)).values():
            for key in ("model_module", "view_module"):
                name = model.get(key) or model.get("state", {}).get(f"_{key}")
                if name and name not in BUILTIN_WIDGET_MODULES:
                    wanted.setdefault(name, model.get(f"{key}_version")
                                      or model.get("state", {}).get(f"_{key}_version", ""))
    return wanted


def static_widget_views(nb: dict, modules: set[str]) -> list[str]:
    """Where a widget needs a module the site does not hold (``modules``: the manager's own and those put in the
    site), show its stored static view: the widget's output keeps its other representations (image/png, text/html,
    text/plain; MyST-NB draws the richest) after a line saying what it is, and its models leave the saved state,
    so that the manager neither looks for the module nor draws an error. Changes ``nb`` (the build's copy, never
    the stored notebook); returns the model ids shown statically."""
    state = _widget_state(nb)
    missing = {mid for mid, m in state.items()
               if {m.get("model_module"), m.get("state", {}).get("_view_module")} - {None, ""} - modules}

    def needs(mid, seen=()):  # the model, or one it holds (a box's children), needs a missing module
        if mid in missing:
            return True
        text = json.dumps(state.get(mid, {}).get("state", {}))
        return any(needs(ref, (*seen, mid)) for ref in set(re.findall(r"IPY_MODEL_(\w+)", text)) - {*seen, mid})

    gone = {mid for mid in state if needs(mid)}
    shown = []
    for cell in nb.get("cells", []):
        outputs = []
        for out in cell.get("outputs", []):
            view = out.get("data", {}).get(WIDGET_VIEW)
            if view and view.get("model_id") in gone:
                module = state.get(view["model_id"], {}).get("model_module", "a widget module")
                outputs.append({"output_type": "display_data", "metadata": {}, "data": {
                    "text/html": f'<p class="stif-widget-note">A live widget ({html.escape(module)}) in a running '
                                 f"notebook; this static copy shows its stored view.</p>",
                    "text/plain": f"[a live widget ({module}); its stored view follows]"}})
                out = {**out, "data": {k: v for k, v in out["data"].items() if k != WIDGET_VIEW}}
                shown.append(view["model_id"])
            outputs.append(out)
        if "outputs" in cell:
            cell["outputs"] = outputs
    for mid in gone:  # a box that holds such a widget goes too: the manager would look for its child's module
        state.pop(mid)
    return shown


def check_notebooks(notebooks: list[Path]) -> None:
    """``ValueError`` naming the first notebook that ``nbformat`` (format 4) finds invalid, where in it and why,
    before anything is built (Sphinx would stop on it with a traceback that never names it)."""
    import nbformat

    for nb in notebooks:
        raw = read_json(nb, "notebook", NOTEBOOK_BYTES)  # a JSON error with its line and column
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
    """Build the book into ``out`` (replaced whole: ``files.replace_folder``); returns its ``index.html``."""
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
    modules = widget_modules(wanted_widget_modules(notebooks)) if scripts else {}
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "source"
        source.mkdir()
        shutil.copy(intro_page(), source / "intro.md")
        for path in notebooks:  # a copy, where a widget the site cannot draw shows its stored static view
            nb = read_json(path, "notebook", NOTEBOOK_BYTES)
            shown = static_widget_views(nb, set(BUILTIN_WIDGET_MODULES) | set(modules))
            if shown and progress:
                print(f"{path.name}: {len(shown)} widget(s) shown as their stored static view (their module is "
                      "not in the site)", flush=True)
            (source / path.name).write_text(json.dumps(nb, indent=1, ensure_ascii=False), encoding="utf-8")
        (source / "_static").mkdir()  # Jupyter Book adds it to Sphinx's html_static_path
        (source / "_static" / "stif_book.css").write_text(SITE_CSS)
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
        for name, path in modules.items():
            shutil.copy(path, widgets / f"{name}.js")
        (widgets / "modules.js").write_text(
            f"require.config({{paths: {json.dumps({name: f'_widgets/{name}' for name in modules})}}});\n")
        (widgets / "mathjax2_hub.js").write_text(MATHJAX2_HUB)
        for page in out.glob("*.html"):
            text = page.read_text(encoding="utf-8")
            if WIDGET_VIEW in text:
                page.write_text(text.replace("</head>", WIDGET_SCRIPTS + "</head>", 1), encoding="utf-8")
    write_search_texts(out)


class _Skeleton(HTMLParser):
    """The main block of a page (``role="main"``) as the search page's excerpts need it: its text, and an empty
    ``div`` for each element with an id (the anchors of the sections a result points at), nested as they were."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts, self.stack, self.depth = [], [], 0  # depth: inside the main block; stack: (tag, wrote, skip)

    def handle_starttag(self, tag, attrs):
        if tag in self.VOID:
            return
        attrs = dict(attrs)
        inside = self.depth > 0 or attrs.get("role") == "main"
        skip = tag in ("script", "style") or "headerlink" in (attrs.get("class") or "").split()
        wrote = inside and bool(attrs.get("id")) and not self.skipping
        if wrote:
            self.parts.append(f'<div id="{html.escape(attrs["id"], quote=True)}">')
        self.stack.append((tag, wrote, skip, inside))
        if inside:
            self.depth += 1

    @property
    def skipping(self):
        return any(skip for _, _, skip, _ in self.stack)

    def handle_endtag(self, tag):
        if tag in self.VOID or all(t != tag for t, *_ in self.stack):
            return
        while self.stack:
            name, wrote, _, inside = self.stack.pop()
            self.depth -= inside
            if wrote:
                self.parts.append("</div>")
            if name == tag:
                break

    def handle_data(self, data):
        if self.depth and not self.skipping:
            self.parts.append(html.escape(re.sub(r"\s+", " ", data), quote=False))


def write_search_texts(site: Path) -> None:
    """Each page's text in the site (``SEARCH_TEXTS``), and the script that answers the search page's requests
    for a result's page with it (``SEARCH_SCRIPT``), added to ``search.html``."""
    search = site / "search.html"
    if not search.is_file():
        return
    texts = {}
    for page in sorted(site.glob("*.html")):
        if page.name not in ("search.html", "genindex.html"):
            parser = _Skeleton()
            parser.feed(page.read_text(encoding="utf-8"))
            texts[page.name] = re.sub(r" {2,}", " ", "".join(parser.parts))
    target = site / SEARCH_TEXTS
    target.parent.mkdir(exist_ok=True)
    target.write_text(f"window.STIF_PAGE_TEXTS = {json.dumps(texts, ensure_ascii=False)};\n{SEARCH_SCRIPT}",
                      encoding="utf-8")
    text = search.read_text(encoding="utf-8")
    search.write_text(text.replace("</head>", f'<script src="{SEARCH_TEXTS}"></script></head>', 1), encoding="utf-8")


# A Markdown table's separator row (``|---|:--:|``; Sphinx's smart quotes make ``---`` a dash) left in a page's text:
# a table the converter did not read as one.
RAW_TABLE = re.compile(r"^\s*\|?\s*:?[-\u2013\u2014]+:?\s*(\|\s*:?[-\u2013\u2014]+:?\s*)+\|?\s*$", re.MULTILINE)


class _Links(HTMLParser):
    """Local references of one page (img src, a href, script src, link href), what it loads from the network
    (a script, image, style sheet or widget CDN at an http(s) address), its visible text, and that text outside
    code (``prose``)."""

    def __init__(self):
        super().__init__()
        self.refs, self.remote, self.text, self.prose, self.hidden, self.code = [], [], [], [], 0, 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("script", "style"):
            self.hidden += 1
        if tag in ("pre", "code", "textarea"):
            self.code += 1
        ref = attrs.get("src") if tag in ("img", "script") else attrs.get("href") if tag in ("a", "link") else None
        if ref:
            self.refs.append(ref)
        loads = [attrs.get("src") if tag in ("img", "script", "iframe") else None,
                 attrs.get("href") if tag == "link" and set((attrs.get("rel") or "").split()) & {
                     "stylesheet", "icon", "preload", "modulepreload"} else None,
                 attrs.get("data-jupyter-widgets-cdn")]
        self.remote += [ref for ref in loads if ref and ref.strip().lower().startswith(("http:", "https:", "//"))]

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self.hidden -= 1
        if tag in ("pre", "code", "textarea") and self.code:
            self.code -= 1

    def handle_data(self, data):
        if not self.hidden:
            self.text.append(data)
            if not self.code:
                self.prose.append(data)


def check_site(index: Path) -> list[str]:
    """Problems of a built site: a local link, image or script that does not resolve, a script, image or style
    sheet loaded from the network (the site is read offline; not looked for in a site built without npm, which has
    no ``_widgets`` folder and loads the widget manager from a CDN, as its build said), a widget shown as its text
    form (``VBox(children=...``) instead of its view, or a Markdown table left as its pipes in a page's text."""
    root = Path(index).parent
    offline = (root / "_widgets").is_dir()
    problems = []
    for page in sorted(root.rglob("*.html")):
        if "_static" in page.relative_to(root).parts:
            continue
        name = page.relative_to(root)
        parser = _Links()
        parser.feed(page.read_text(encoding="utf-8"))
        for ref in parser.refs:
            parts = urlsplit(ref)
            if parts.scheme or ref.startswith(("#", "//", "mailto:")) or not parts.path:
                continue
            if not (page.parent / unquote(parts.path)).exists():
                problems.append(f"{name}: {ref} does not resolve")
        problems += [f"{name}: loads {ref} from the network (the site must work offline)" for ref in parser.remote
                     if offline]
        text = " ".join(parser.text)
        if re.search(r"\b[VH]Box\(children=", text):
            problems.append(f"{name}: a widget is shown as its text form")
        raw = RAW_TABLE.findall("".join(parser.prose))
        if raw:
            problems.append(f"{name}: {len(raw)} Markdown table(s) left as raw pipes in the text")
    return problems


PAGE_PROBE = r"""() => {
    const views = Array.from(document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]'));
    const main = document.querySelector('article.bd-article') || document.querySelector('[role="main"]')
        || document.body;
    // a widget that drew an error: the manager's error view, or its "Click to show javascript error."
    const failing = new Set(document.querySelectorAll('.jupyter-widgets-error-widget'));
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
        if (/javascript error/i.test(n.data) && n.parentElement.closest('.jupyter-widgets, .cell_output, .widget'))
            failing.add(n.parentElement.closest('.jupyter-widgets-error-widget') || n.parentElement);
    }
    // a Markdown table left as pipes: a separator row in the text outside code
    const prose = main.cloneNode(true);
    prose.querySelectorAll('pre, code, script, style, textarea, mjx-container').forEach(e => e.remove());
    const separator = /^\s*\|?\s*:?[-\u2013\u2014]+:?\s*(\|\s*:?[-\u2013\u2014]+:?\s*)+\|?\s*$/;
    const lines = prose.textContent.split('\n');
    const rawTables = lines.map((l, i) => separator.test(l) ? (lines[i - 1] || l).trim().slice(0, 80) : null)
        .filter(l => l !== null);
    return {
        equations: document.querySelectorAll('mjx-container').length,
        unrendered: (document.body.innerText.match(/\$\$|\\\(|\\\[/g) || []).length,
        images: document.images.length,
        broken: Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src),
        widgets: views.length,
        drawn: views.filter(s => s.parentElement.querySelector('.lm-Widget')).length,
        widget_errors: Array.from(failing).map(e => e.textContent.trim().slice(0, 120)),
        raw_tables: rawTables,
    };
}"""
# An element running past the text column with no horizontally scrolling box of the column's width around it (the
# content past the column is cut off, or the page itself scrolls sideways): at each of ``CHECK_WIDTHS``.
WIDE_PROBE = r"""() => {
    const main = document.querySelector('article.bd-article') || document.querySelector('[role="main"]')
        || document.body;
    const column = main.getBoundingClientRect();
    const inside = r => r.left >= column.left - 1 && r.right <= column.right + 1;
    const wide = [];
    for (const el of main.querySelectorAll('*')) {
        const r = el.getBoundingClientRect();
        if (r.width === 0 || r.height === 0 || inside(r) || wide.some(w => w.el.contains(el))) continue;
        let scrolls = false;
        for (let a = el.parentElement; a && a !== main.parentElement; a = a.parentElement) {
            const style = getComputedStyle(a);
            if (['auto', 'scroll'].includes(style.overflowX) && inside(a.getBoundingClientRect())) {
                scrolls = true; break;
            }
        }
        if (!scrolls && getComputedStyle(el).visibility !== 'hidden')
            wide.push({el, what: el.tagName.toLowerCase() + (el.className && typeof el.className === 'string'
                ? '.' + el.className.trim().split(/\s+/).join('.') : '') + ` ${Math.round(r.width)} px`});
    }
    return {column: Math.round(column.width), wide: wide.map(w => w.what)};
}"""
CHECK_WIDTHS = (1300, 1200, 768)  # the browser's window: a desktop, one with a 688 px column, a tablet
# The search page: how many results it listed and how many came with a text excerpt, once it finished.
SEARCH_PROBE = """() => ({
    results: document.querySelectorAll('#search-results li').length,
    excerpts: document.querySelectorAll('#search-results li p.context').length
})"""
SEARCH_DONE = """() => {
    const s = document.querySelector('#search-results .search-summary, #search-results p');
    return !!s && /finished|found|did not match/i.test(s.textContent);
}"""


def page_problems(row: dict) -> list[str]:
    """The faults ``browser_check`` found on one page (``row``), each a line naming the page."""
    name, found = row["page"], []
    found += [f"{name}: console error: {text}" for text in row.get("console", [])]
    found += [f"{name}: page error: {text}" for text in row.get("errors", [])]
    found += [f"{name}: failed request: {url}" for url in row.get("failed", [])]
    found += [f"{name}: broken image: {src}" for src in row.get("broken", [])]
    found += [f"{name}: a widget shows an error: {text}" for text in row.get("widget_errors", [])]
    found += [f"{name}: a Markdown table left as raw pipes: {line}" for line in row.get("raw_tables", [])]
    found += [f"{name}: wider than its column and not in a scrolling box: {what}" for what in row.get("wide", [])]
    if row.get("unrendered") and "results" not in row:  # a search excerpt is page text: its TeX stays raw
        found.append(f"{name}: {row['unrendered']} equation delimiter(s) left untypeset")
    if "results" in row:
        if not row.get("finished"):
            found.append(f"{name}: the search did not finish")
        elif not row["results"]:
            found.append(f"{name}: the search found nothing")
        elif row["excerpts"] < row["results"]:
            found.append(f"{name}: {row['results'] - row['excerpts']} of {row['results']} search results without "
                         "a text excerpt")
    return found


def browser_check(index: Path, screenshots: str | Path | None = None, chromium: str | None = None) -> list[dict]:
    """Open every page of a built site in headless Chromium, and its search page on ``SEARCH_QUERY``, and report
    what rendered, one dict per page: ``PAGE_PROBE``'s counts and findings, console errors, page errors and failed
    requests (the search page: its results and their excerpts), and ``problems``, the faults among them
    (``page_problems``; none on a sound site). A screenshot of each page's first screen and of its first widget
    goes in ``screenshots``, an output folder of this tool's (``files.output_folder``)."""
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    root = Path(index).resolve().parent
    pages = sorted(p for p in root.glob("*.html") if p.name not in ("search.html", "index.html"))
    if (root / "search.html").is_file():
        pages.append(root / "search.html")
    chromium = chromium or shutil.which("chromium") or shutil.which("chromium-browser")
    rows = []
    held = nullcontext() if screenshots is None else output_folder(screenshots, "book", "--browser-check")
    with held as screenshots, sync_playwright() as pw:
        try:
            browser = pw.chromium.launch(executable_path=chromium, headless=True,
                                         args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        except PlaywrightError:
            raise ValueError("--browser-check needs Chromium, and none was found (Debian: apt install chromium; or "
                             "python -m playwright install chromium)") from None
        for path in pages:
            search = path.name == "search.html"
            page = browser.new_page(viewport={"width": 1300, "height": 900})
            errors, failed, console = [], [], []
            page.on("pageerror", lambda e, errors=errors: errors.append(str(e).strip().splitlines()[0][:300]))
            page.on("requestfailed", lambda r, failed=failed: failed.append(f"{r.url} ({r.failure})"))
            page.on("response", lambda r, failed=failed: r.status >= 400 and failed.append(f"{r.url} ({r.status})"))
            page.on("console", lambda m, console=console: m.type == "error" and console.append(m.text.strip()[:300]))
            page.goto(path.as_uri() + (f"?q={SEARCH_QUERY}" if search else ""), wait_until="load")
            page.wait_for_function("() => !window.MathJax || !window.MathJax.startup || "
                                   "window.MathJax.startup.promise.then(() => true)", timeout=30000)
            page.wait_for_timeout(1500)  # the widget manager draws after load
            row = {"page": path.name, **page.evaluate(PAGE_PROBE), "console": console, "errors": errors,
                   "failed": failed}
            if search:
                try:
                    page.wait_for_function(SEARCH_DONE, timeout=20000)
                    row["finished"] = True
                except PlaywrightTimeout:
                    row["finished"] = False
                page.wait_for_timeout(1000)  # each result's excerpt comes after the list
                row.update(page.evaluate(SEARCH_PROBE))
                row["page"] = f"search.html?q={SEARCH_QUERY}"
            if screenshots is not None:
                page.screenshot(path=str(checked_target(screenshots / f"{path.stem}.jpg")), quality=80)
                view = page.query_selector(f'script[type="{WIDGET_VIEW}"]')
                if view is not None:  # the first widget as drawn
                    cell = view.evaluate_handle("e => e.parentElement").as_element()
                    cell.scroll_into_view_if_needed()
                    cell.screenshot(path=str(checked_target(screenshots / f"{path.stem}__widget.png")))
            row["wide"] = []
            for width in CHECK_WIDTHS:
                page.set_viewport_size({"width": width, "height": 900})
                page.wait_for_timeout(300)
                found = page.evaluate(WIDE_PROBE)
                row["wide"] += [f"{what} in a {found['column']} px column ({width} px window)"
                                for what in found["wide"] if what not in " ".join(row["wide"])]
            row["problems"] = page_problems(row)
            rows.append(row)
            page.close()
        browser.close()
    return rows
