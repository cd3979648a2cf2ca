"""The built HTML works offline: every page opened from disk in headless Chromium.

Needs a built book (``arlib book``) and Debian's Chromium (``apt-get install
chromium``; never a Playwright browser download). ``ARBOOK_HTML`` points the tests at
another build (default ``_build/html``), ``ARBOOK_CHROMIUM`` at another browser binary.

Every request that is not ``file://`` is blocked and counted: the book must not reach for
a CDN, a web font or anything else on the network.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from conftest import PageLog

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
HTML = Path(os.environ.get("ARBOOK_HTML", REPO / "_build" / "html"))
# Copied-in assets, not pages of the book.
NOT_PAGES = {"_static", "_sources", "_images", "mathjax", "html-manager", "requirejs"}


def _pages() -> list[Path]:
    if not (HTML / "index.html").is_file():
        return []
    return sorted(p for p in HTML.rglob("*.html") if not NOT_PAGES.intersection(p.relative_to(HTML).parts))


PAGES = _pages()
needs_build = pytest.mark.skipif(not PAGES, reason=f"no built book at {HTML} (run `arlib book` first)")


def _page_ids(pages):
    return [p.relative_to(HTML).as_posix() for p in pages]


# -- static checks: no page references the network ------------------------------------------

_REMOTE_ASSET = re.compile(
    r"""<(?:script|img|iframe|source|audio|video)\b[^>]*\bsrc\s*=\s*["'](?:https?:)?//"""
    r"""|<link\b(?=[^>]*\brel\s*=\s*["'](?:stylesheet|preload|modulepreload|icon|shortcut icon)["'])"""
    r"""[^>]*\bhref\s*=\s*["'](?:https?:)?//"""
    r"""|@import\s+(?:url\()?\s*["']?(?:https?:)?//""",
    re.IGNORECASE,
)


@needs_build
@pytest.mark.parametrize("page", PAGES, ids=_page_ids(PAGES))
def test_page_references_no_remote_assets(page: Path):
    html = page.read_text(encoding="utf-8")
    hits = [m.group(0)[:120] for m in _REMOTE_ASSET.finditer(html)]
    assert not hits, f"{page.relative_to(HTML)} loads remote assets: {hits}"


@needs_build
def test_stylesheets_reference_no_remote_fonts():
    remote = re.compile(r"""url\(\s*["']?(?:https?:)?//|@import\s+(?:url\()?\s*["']?(?:https?:)?//""")
    offenders = [css.relative_to(HTML).as_posix() for css in HTML.rglob("*.css") if remote.search(css.read_text(encoding="utf-8", errors="replace"))]
    assert not offenders, f"stylesheets pointing at the network: {offenders}"


# -- in the browser ------------------------------------------------------------------------

_REDIRECT = re.compile(r"""<meta[^>]+http-equiv=["']?refresh""", re.IGNORECASE)


@pytest.fixture(scope="module")
def browser(request):
    if not PAGES:
        pytest.skip(f"no built book at {HTML} (run `arlib book` first)")
    return request.getfixturevalue("chromium")


@pytest.fixture
def open_page(browser):
    contexts = []

    def _open(path: Path):
        ctx = browser.new_context()
        contexts.append(ctx)
        log = PageLog()

        def route(r):
            if r.request.url.startswith(("file://", "data:", "blob:")):
                r.continue_()
            else:
                log.blocked.append(r.request.url)
                r.abort()

        ctx.route("**/*", route)
        page = ctx.new_page()
        page.on("requestfailed", lambda r: log.failed.append(f"{r.url} ({r.failure})"))
        page.on("console", lambda m: m.type == "error" and log.errors.append(m.text))
        page.on("pageerror", lambda e: log.errors.append(f"uncaught: {e}"))
        page.goto(path.as_uri(), wait_until="load")
        if _REDIRECT.search(path.read_text(encoding="utf-8")):  # index.html -> the root page
            page.wait_for_url(lambda url: url != path.as_uri(), timeout=10_000)
            page.wait_for_load_state("load")
        # MathJax typesets after load; its startup promise settles once the page is done.
        page.evaluate("""() => (window.MathJax && MathJax.startup && MathJax.startup.promise)
                              ? MathJax.startup.promise.then(() => true) : true""")
        page.wait_for_timeout(300)
        return page, log

    yield _open
    for ctx in contexts:
        ctx.close()


@needs_build
@pytest.mark.parametrize("page_path", PAGES, ids=_page_ids(PAGES))
def test_page_loads_offline_without_errors(open_page, page_path: Path):
    page, log = open_page(page_path)
    name = page_path.relative_to(HTML).as_posix()
    assert not log.blocked, f"{name} tried the network: {log.blocked}"
    assert not log.failed, f"{name} has failed requests: {log.failed}"
    assert not log.errors, f"{name} logged console errors: {log.errors}"
    # Math, where there is any, was typeset: no raw TeX delimiters, no TeX errors.
    assert page.locator("mjx-merror").count() == 0, f"{name} has MathJax errors"
    untypeset = page.evaluate("""() => Array.from(document.querySelectorAll('div.math, span.math'))
                                     .filter(e => !e.querySelector('mjx-container')).length""")
    assert untypeset == 0, f"{name}: {untypeset} math elements were not typeset"


@needs_build
def test_theory_page_math_is_rendered(open_page):
    theory = HTML / "book" / "C_theory.html"
    if not theory.is_file():
        pytest.skip("this build has no book/C_theory page")
    page, _ = open_page(theory)
    assert page.locator("mjx-container").count() > 20
    assert page.locator("mjx-container[display='true']").count() > 5
    text = page.locator("main").inner_text()
    assert "$$" not in text and "\\begin{" not in text and "\\frac" not in text
    # sphinx-proof blocks were rendered and numbered
    assert page.locator(".proof.theorem, div.theorem").count() >= 1
    # at a desktop width (the default viewport, 1280 px) no displayed equation needs scrolling
    too_wide = page.evaluate("""() => Array.from(document.querySelectorAll('mjx-container[display="true"]'))
        .filter(c => c.querySelector('mjx-math').getBoundingClientRect().width
                     > c.getBoundingClientRect().width + 1)
        .map(c => (c.closest('div.math') || c).id)""")
    assert not too_wide, f"equations wider than the page: {too_wide}"


def _slider_pages() -> list[Path]:
    """The built pages with an ε slider; the calling test is skipped when there is none."""
    pages = [p for p in PAGES if "SelectionSliderModel" in p.read_text(encoding="utf-8")]
    if not pages:
        pytest.skip("no page with an ε slider (arlib.book.widgets.eps_explorer) in this build")
    return pages


@needs_build
def test_eps_slider_switches_figure(open_page):
    for path in _slider_pages():
        page, log = open_page(path)
        handle = page.locator(".widget-slider .noUi-handle").first
        handle.wait_for(state="visible", timeout=20_000)

        def shown(page=page):
            return page.evaluate("""() => Array.from(document.querySelectorAll('.widget-output img'))
                                         .filter(i => i.offsetParent !== null).map(i => i.src)""")

        before = shown()
        readout_before = page.locator(".widget-slider .widget-readout").first.inner_text()
        assert len(before) >= 1, f"{path.name}: the slider shows no figure"
        handle.focus()
        page.keyboard.press("ArrowRight")
        page.wait_for_function(
            "src => Array.from(document.querySelectorAll('.widget-output img')).some(i => i.offsetParent !== null && i.src !== src)",
            arg=before[0],
            timeout=5_000,
        )
        after = shown()
        assert after and after[0] != before[0], f"{path.name}: the figure did not change"
        readout = page.locator(".widget-slider .widget-readout").first
        assert readout.inner_text() != readout_before
        # The readout is read-only (book/_extra/arbook-widgets.js): typing into it changes nothing.
        assert readout.evaluate("e => e.isContentEditable") is False, f"{path.name}: the slider's readout is editable"
        shown_value, figure = readout.inner_text(), shown()
        readout.click()
        page.keyboard.type("16")
        page.keyboard.press("Enter")
        page.wait_for_timeout(300)
        assert readout.inner_text() == shown_value and shown() == figure, f"{path.name}: typing into the readout changed it"
        assert not log.errors, f"{path.name}: console errors while sliding: {log.errors}"


# -- what a reader meets (issue 14) ----------------------------------------------------------

LAPTOP = {"width": 1366, "height": 900}
CHAPTER_PAGES = [p for p in PAGES if p.parent.name == "executed"]

# Every element of the page's content column, with <details> opened (provenance, verdicts), that is
# wider than the column or whose content needs scrolling or is cut off. Code inputs may scroll (code is
# not wrapped), and math has its own test (test_theory_page_math_is_rendered).
_TOO_WIDE = """() => {
  const col = document.querySelector('article.bd-article') || document.querySelector('main');
  document.querySelectorAll('details').forEach(d => { d.open = true; });
  const box = col.getBoundingClientRect();
  const name = el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
      (typeof el.className === 'string' && el.className.trim() ? '.' + el.className.trim().split(/\\s+/).slice(0, 2).join('.') : '');
  const found = [];
  for (const el of col.querySelectorAll('*')) {
    if (el.closest('mjx-container, .math, div.cell_input, div.highlight')) continue;
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    const cs = getComputedStyle(el);
    const hidden = ['auto', 'scroll', 'hidden'].includes(cs.overflowX) && el.scrollWidth > el.clientWidth + 2;
    if (r.right > box.right + 2 || r.left < box.left - 2 || hidden) {
      if (found.some(f => f.el.contains(el))) continue;
      found.push({el, text: `${name(el)} ${Math.round(hidden ? el.scrollWidth : r.width)} px: ${(el.innerText || '').trim().slice(0, 50)}`});
    }
  }
  return {column: box.width, offenders: found.map(f => f.text)};
}"""


def _laptop(open_page, path):
    page, log = open_page(path)
    page.set_viewport_size(LAPTOP)
    page.wait_for_timeout(300)
    return page, log


@needs_build
@pytest.mark.parametrize("page_path", PAGES, ids=_page_ids(PAGES))
def test_page_fits_the_content_column_at_laptop_width(open_page, page_path: Path):
    page, _ = _laptop(open_page, page_path)
    result = page.evaluate(_TOO_WIDE)
    assert result["column"] > 600, f"{page_path.name}: content column only {result['column']:.0f} px wide at 1366 px"
    assert not result["offenders"], f"{page_path.relative_to(HTML)}: wider than the {result['column']:.0f} px column: {result['offenders']}"


_STAMP = re.compile(r"Built from commit ([0-9a-f]{7}(?:\+dirty)?|unknown)(?: \(with uncommitted changes\))? on (\d{4}-\d{2}-\d{2}), profile ([\w, -]+)\.")


def _stamp_profile(html: str) -> str | None:
    m = _STAMP.search(re.sub(r"<[^>]+>", "", html))
    return m.group(3) if m else None


@needs_build
def test_every_page_carries_the_build_stamp():
    missing = [
        p.relative_to(HTML).as_posix()
        for p in PAGES
        if _stamp_profile(p.read_text(encoding="utf-8")) is None and not _REDIRECT.search(p.read_text(encoding="utf-8"))
    ]  # index.html only redirects to the root page
    assert not missing, f"pages without the build stamp (arlib.book.build.stamp): {missing}"


@needs_build
@pytest.mark.parametrize("page_path", CHAPTER_PAGES, ids=_page_ids(CHAPTER_PAGES))
def test_chapter_shows_no_parameter_cells(open_page, page_path: Path):
    page, _ = open_page(page_path)
    text = page.locator("article.bd-article").inner_text()
    assert not re.search(r"^\s*profile\s*=\s*[\"']", text, re.MULTILINE), (
        f"{page_path.name}: a parameters cell is shown (template defaults or papermill's injected values)"
    )
    profile = _stamp_profile(page_path.read_text(encoding="utf-8"))
    if profile and "smoke" not in profile:
        assert "profile smoke" not in text and '"smoke"' not in text, f"{page_path.name}: smoke settings in a {profile} book"


# What a reader meets on one page at 1366 x 900, details closed as the page opens (issue 24): every image a
# figure with a real caption (a <figcaption> with the chapter's number; an ε slider's images too, inside the
# <figure> that arlib.book.build.slider_figures makes of the slider and its caption) and alt text that describes it, not a file name; no figure whose legend or
# boxed text covers data (arlib.book.chapter.figure_markdown marks it from matplotlib's artist extents at
# save time, arlib.book.plots.legend_overlaps); every table of a chapter captioned; no table taller than
# 1.5 screens that is not collapsed.
_READER = r"""() => {
  const col = document.querySelector('article.bd-article') || document.querySelector('main');
  const problems = [];
  const fileLike = a => /(^|\/)[\w.-]+\.(png|jpe?g|gif|svg|webp)$/i.test(a.trim()) || /^[0-9a-f]{32,}/.test(a.trim()) || a.includes('_images/');
  for (const img of col.querySelectorAll('img')) {
    const fig = img.closest('figure');
    const captioned = !!(fig && fig.querySelector(':scope > figcaption .arbook-caption-number'));
    if (!captioned) problems.push(`image without a caption: ${img.alt.slice(0, 60) || img.src.slice(0, 60)}`);
    if (!img.alt.trim() || fileLike(img.alt)) problems.push(`image whose alt text is not a description: "${img.alt.slice(0, 60)}"`);
  }
  for (const fig of col.querySelectorAll('figure.arbook-legend-overlap'))
    problems.push(`legend or text box over data: ${(fig.querySelector('.arbook-caption-number') || {}).innerText}`);
  for (const cell of col.querySelectorAll('div.cell'))
    if (cell.querySelector('div.cell_output table') && !cell.querySelector('.arbook-caption-number'))
      problems.push(`table without a caption: ${(cell.querySelector('div.cell_output table').innerText || '').slice(0, 60)}`);
  for (const t of col.querySelectorAll('table')) {
    if (t.closest('details:not([open])')) continue;  // collapsed: one line until the reader opens it
    const h = t.getBoundingClientRect().height;
    if (h > 1.5 * window.innerHeight) problems.push(`table ${Math.round(h)} px tall, not collapsed: ${(t.innerText || '').slice(0, 60)}`);
  }
  const numbers = Array.from(col.querySelectorAll('.arbook-caption-number')).map(e => e.innerText.trim());
  return {problems, numbers};
}"""


@needs_build
@pytest.mark.parametrize("page_path", PAGES, ids=_page_ids(PAGES))
def test_reader_check_at_laptop_width(open_page, page_path: Path):
    """A reader's check of one page at 1366 px: captioned, described figures; no legend over data; captioned tables,
    none taller than 1.5 screens unless collapsed (the width check is test_page_fits_the_content_column_at_laptop_width)."""
    page, _ = _laptop(open_page, page_path)
    found = page.evaluate(_READER)
    name = page_path.relative_to(HTML).as_posix()
    assert not found["problems"], f"{name}: {found['problems']}"
    numbers = found["numbers"]
    assert all(re.fullmatch(r"(Figure|Table) [A-D]\d?\.\d+\.", n) for n in numbers), f"{name}: {numbers}"
    assert len(numbers) == len(set(numbers)), f"{name}: caption numbers repeat: {numbers}"


@needs_build
def test_figures_are_sphinx_figures_with_targets():
    """In a chapter, a captioned figure is a MyST {figure}: a <figure> with an id (a {ref} target) and a <figcaption>."""
    pages = [p for p in CHAPTER_PAGES if "arbook-figure" in p.read_text(encoding="utf-8")]
    if not pages:
        pytest.skip("no chapter with a figure in this build")
    for p in pages:
        html = p.read_text(encoding="utf-8")
        figures = re.findall(r"<figure[^>]*arbook-figure[^>]*>", html)
        assert all(re.search(r'\bid="fig-[\w-]+"', f) for f in figures), f"{p.name}: figures without a target: {figures[:3]}"
        assert html.count("<figcaption") >= len(figures), p.name


_SLIDER_FIGURES = r"""() => Array.from(document.querySelectorAll('.widget-slider')).map(s => {
  const fig = s.closest('figure.arbook-slider');
  const cap = fig && fig.querySelector(':scope > figcaption .arbook-caption-number');
  return {id: fig ? fig.id : null, number: cap ? cap.innerText.trim() : null, images: fig ? fig.querySelectorAll('img').length : 0};
})"""


@needs_build
def test_each_eps_slider_is_a_figure_with_its_caption(open_page):
    """Each ε slider, once the widget manager has drawn it, sits in a <figure> (with an anchor id) whose <figcaption> is its numbered caption."""
    for path in _slider_pages():
        page, _ = open_page(path)
        page.wait_for_selector(".widget-slider")
        sliders = page.evaluate(_SLIDER_FIGURES)
        html = path.read_text(encoding="utf-8")
        assert len(sliders) == html.count('<figure class="arbook-figure arbook-slider"'), f"{path.name}: {sliders}"
        for s in sliders:
            assert s["number"] and re.fullmatch(r"Figure [A-D]\d?\.\d+\.", s["number"]), f"{path.name}: slider without a numbered figcaption: {s}"
            assert re.fullmatch(r"fig-[\w-]+", s["id"] or ""), f"{path.name}: slider figure without an anchor: {s}"
            assert s["images"] >= 1, f"{path.name}: slider figure shows no image: {s}"


@needs_build
def test_search_from_disk_finds_pages_with_snippets(open_page):
    search = HTML / "search.html"
    if not search.is_file():
        pytest.skip("this build has no search page")
    page, log = open_page(search)
    page.goto(search.as_uri() + "?q=margin", wait_until="load")
    page.wait_for_selector("#search-results ul.search li", timeout=20_000)
    page.wait_for_selector("#search-results ul.search li p.context", timeout=10_000)
    items = page.locator("#search-results ul.search li")
    snippets = page.locator("#search-results ul.search li p.context")
    assert items.count() >= 2 and snippets.count() == items.count(), "search results without snippets"
    assert "margin" in snippets.first.inner_text().lower()
    assert not log.errors and not log.failed and not log.blocked, (log.errors, log.failed, log.blocked)


@needs_build
def test_book_server_serves_the_build():
    import threading
    import urllib.request

    from arlib.book.build.pipeline import book_server

    if HTML.resolve() != (REPO / "_build" / "html").resolve():
        pytest.skip("arlib book --serve serves the repository's own build")
    with book_server(REPO, port=0) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            url = f"http://127.0.0.1:{server.server_address[1]}/"
            with urllib.request.urlopen(url + "search.html", timeout=10) as r:
                assert r.status == 200 and b"search" in r.read().lower()
        finally:
            server.shutdown()


@needs_build
@pytest.mark.parametrize("page_path", CHAPTER_PAGES, ids=_page_ids(CHAPTER_PAGES))
def test_verdicts_are_collapsed_blocks_not_raw_directives(open_page, page_path: Path):
    page, _ = open_page(page_path)
    text = page.locator("article.bd-article").inner_text()
    assert ":::{" not in text and "```{" not in text, f"{page_path.name}: a directive printed by the chapter was not rendered"
    if "show_verdicts" in page_path.read_text(encoding="utf-8"):
        assert page.locator("details.sd-dropdown").count() >= 1, f"{page_path.name}: verdicts are not collapsible"


# -- the ε slider says what it is (issue 24) ------------------------------------------------

_SLIDER_GEOMETRY = """() => Array.from(document.querySelectorAll('.widget-slider')).map(s => {
  const mid = e => { const b = e.getBoundingClientRect(); return (b.left + b.right) / 2; };
  const box = e => e.getBoundingClientRect();
  return {label: (s.querySelector('.widget-label') || {}).innerText || '',
          ticks: Array.from(s.querySelectorAll('.arbook-eps-tick')).map(t => [t.innerText.trim(), mid(t), box(t).top]),
          readonly: Array.from(s.querySelectorAll('.arbook-eps-readonly')).map(t => [t.innerText.trim(), mid(t), box(t).top]),
          readout: [mid(s.querySelector('.widget-readout')), box(s.querySelector('.widget-readout')).bottom],
          track_bottom: box(s.querySelector('.noUi-target')).bottom,
          slider: [box(s).top, box(s).bottom], clipped: s.scrollHeight > s.clientHeight + 1};
})"""


@needs_build
def test_eps_slider_labels_its_unit_its_values_and_its_read_only_readout(open_page):
    """The slider's label names ε and its unit, each value it takes is written under the track where the handle stops for it,
    and the readout carries a "read-only" mark under it; nothing of it is cut off (arlib.book.widgets.eps_explorer)."""
    for path in _slider_pages():
        page, log = open_page(path)
        handle = page.locator(".widget-slider .noUi-handle").first
        handle.wait_for(state="visible", timeout=20_000)
        s = page.evaluate(_SLIDER_GEOMETRY)[0]
        assert "ε" in s["label"] and "/255" in s["label"], f"{path.name}: slider label {s['label']!r} names no ε unit"
        assert len(s["ticks"]) >= 2 and not s["clipped"], f"{path.name}: {s}"
        assert all(top >= s["track_bottom"] - 2 and top < s["slider"][1] for _, _, top in s["ticks"]), f"{path.name}: tick labels not under the track: {s}"
        ((mark, x, top),) = s["readonly"]
        assert mark == "read-only" and abs(x - s["readout"][0]) < 2 and top >= s["readout"][1] - 6, f"{path.name}: {s}"
        handle.focus()
        for k, (label, x, _) in enumerate(s["ticks"]):
            if k:
                page.keyboard.press("ArrowRight")
                page.wait_for_timeout(150)
            at = page.evaluate(
                "() => { const h = document.querySelector('.widget-slider .noUi-handle').getBoundingClientRect();"
                " return [(h.left + h.right) / 2, document.querySelector('.widget-slider .widget-readout').innerText.trim()]; }"
            )
            assert at[1] == label and abs(at[0] - x) < 2, f"{path.name}: the handle at {at} is not over its tick label {label!r} at {x:.0f} px"
        assert not log.errors, f"{path.name}: {log.errors}"
