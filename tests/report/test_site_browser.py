"""The generated site in a real headless Chromium: no console errors, sorting, filters, permalinks, plots, escaping,
and readability at 1,400 px (no hidden columns, no overlapping plot labels, no clipped axes, collapsed run lists),
also on a site built from 10,000 synthetic records.

The browser is driven with selenium through the system chromedriver (Debian's chromium-driver). The small site
comes from a tiny real run of a three-row suite (conv, sep-chans, and a conv row whose label is an HTML injection
attempt in its free-text ``display`` title).
"""

from __future__ import annotations

import copy
import json
import math
import random
import time
from pathlib import Path

import pytest

from bench.cli import main
from bench.report.runpage import data_href

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
    pytest.skip(
        f"needs Debian's chromium and chromium-driver ({CHROMIUM}, {CHROMEDRIVER}); "
        "install with: apt-get install chromium chromium-driver",
        allow_module_level=True,
    )
webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (pip install -e '.[test]')")
from selenium.common.exceptions import NoAlertPresentException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402

pytestmark = pytest.mark.browser

EVIL = "<img src=x onerror=alert(1)>"
SUITE = f"""\
name: browser
description: Three rows for the headless-browser test of the site.
task: classification
dataset: digits
protocol:
  name: tiny
  epochs: 2
  batch_size: 64
  max_batches: 1
  train_subset: 128
  test_subset: 64
  augment: []
backbones:
  - name: preact-resnet
    options: {{n: 1}}
layers:
  - {{name: conv}}
  - {{name: sep-chans}}
  - {{name: conv, label: evil-row, display: {json.dumps(EVIL)}, stem: frozen-conv}}
seeds: [0]
"""
WIDTH = 1400


class _Browser:
    """selenium's Chrome driver with the few helpers these tests use."""

    def __init__(self, profile_dir: Path):
        opts = webdriver.ChromeOptions()
        opts.binary_location = str(CHROMIUM)
        for arg in (
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            f"--window-size={WIDTH},1000",
            f"--user-data-dir={profile_dir}",
        ):
            opts.add_argument(arg)
        # leave a dialog open so that the test can see it instead of having it dismissed
        opts.set_capability("unhandledPromptBehavior", "ignore")
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        # the system chromedriver, never selenium-manager's download
        self.d = webdriver.Chrome(options=opts, service=Service(executable_path=str(CHROMEDRIVER)))
        self.d.set_script_timeout(60)
        self.d.set_page_load_timeout(120)

    def get(self, url: str):
        self.d.get(url)

    def refresh(self):
        self.d.refresh()

    def js(self, script: str, *args):
        return self.d.execute_script(script, *args)

    def find(self, css: str):
        return self.d.find_element(By.CSS_SELECTOR, css)

    def alert_text(self):
        """Text of an open JavaScript dialog, or None."""
        try:
            return self.d.switch_to.alert.text
        except NoAlertPresentException:
            return None

    def dismiss_alert(self):
        self.d.switch_to.alert.dismiss()

    def logs(self) -> list[dict]:
        """Browser console entries (console API calls, uncaught exceptions, failed loads) since the last call."""
        return self.d.get_log("browser")

    def quit(self):
        self.d.quit()


def _type(el, text: str):
    el.send_keys(text)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browser_site")
    (tmp / "suites").mkdir()
    (tmp / "suites" / "browser.yaml").write_text(SUITE)
    results, out = tmp / "results", tmp / "site"
    assert (
        main(
            ["run", str(tmp / "suites" / "browser.yaml"), "--results", str(results), "--no-progress", "--device", "cpu"]
        )
        == 0
    )
    assert main(["report", "--results", str(results), "--suites", str(tmp / "suites"), "--site", str(out)]) == 0
    records = [json.loads(p.read_text()) for p in (results / "browser").glob("*.json")]
    assert sorted(r["label"] for r in records) == sorted(["conv", "sep-chans", "evil-row"])
    assert all(r["status"] == "ok" for r in records), [r.get("error") for r in records]
    return out


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    b = _Browser(tmp_path_factory.mktemp("chromium_profile"))
    yield b
    b.quit()


def _close_dialogs(browser: _Browser) -> list[str]:
    texts = []
    while (text := browser.alert_text()) is not None and len(texts) < 20:
        texts.append(text)
        browser.dismiss_alert()
    return texts


def _open(browser: _Browser, path: Path, fragment: str = "") -> list[dict]:
    """A fresh load of a page (never a same-document hash change); returns the console entries it produced,
    with any JavaScript dialog (alert, confirm, prompt) it opened as a SEVERE entry. Dialogs are dismissed so
    that they cannot block the commands that follow."""
    _close_dialogs(browser)
    browser.get("about:blank")
    browser.logs()  # drop whatever came before
    browser.get(path.as_uri() + fragment)
    dialogs = _close_dialogs(browser)
    browser.js("return document.readyState")
    dialogs += _close_dialogs(browser)
    return browser.logs() + [{"level": "SEVERE", "message": f"dialog opened: {t!r}"} for t in dialogs]


def _wait_for(browser: _Browser, script: str, limit_s: float = 120.0) -> None:
    """Poll ``script`` until it returns true: for what a page does after a command returns (a shard loaded, a
    link's navigation finished). The limit is only there so that a broken page fails instead of hanging; a busy
    machine is slow, never near it."""
    deadline = time.monotonic() + limit_s
    while not browser.js(script):
        assert time.monotonic() < deadline, f"still false after {limit_s:.0f} s: {script}"
        time.sleep(0.05)


def _click_to(browser: _Browser, link, page: str) -> None:
    """Click a link to another page and wait until that page has loaded (its inline scripts have run)."""
    link.click()
    _wait_for(
        browser,
        f"return location.pathname.split('/').pop() === {json.dumps(page)} && document.readyState === 'complete'",
    )


def _problems(entries: list[dict]) -> list[str]:
    return [e["message"] for e in entries if e["level"] in ("SEVERE", "WARNING")]


def _run_ids(site: Path) -> list[str]:
    """The runs the site has data for (in its shards' ``runs/<shard>.json``), each drawn by ``run.html#<id>``."""
    return sorted(i for p in (site / "runs").glob("*.json") for i in json.loads(p.read_text()))


def _open_run(browser: _Browser, site: Path, run_id: str) -> list[dict]:
    """Open ``run.html#<id>`` fresh and wait until its script has drawn the run from its shard."""
    entries = _open(browser, site / "run.html", "#" + run_id)
    _wait_for(browser, "return document.getElementById('run').getAttribute('data-state') !== 'loading'")
    state = browser.js("return document.getElementById('run').getAttribute('data-state')")
    assert state == "ready", (run_id, state)
    return entries + browser.logs()


ROWS_JS = """
var t = document.getElementById(arguments[0]), col = arguments[1];
return Array.prototype.map.call(t.tBodies[0].rows, function (tr) {
  var r = tr.getBoundingClientRect();
  return {label: (tr.cells[1].querySelector('b') || tr.cells[1]).textContent.trim(), family: tr.getAttribute('data-family'),
          key: col === null ? null : tr.cells[col].getAttribute('data-sort'),
          hidden: tr.hidden, shown: r.height > 0 && r.width > 0};
});"""


def _rows(browser, table="lb-1", col=None):
    return browser.js(ROWS_JS, table, col)


def _col(browser, header: str, table="lb-1") -> int:
    heads = browser.js(
        "return Array.prototype.map.call(document.getElementById(arguments[0]).tHead.rows[0].cells,"
        " function (th) { return th.textContent.trim(); })",
        table,
    )
    return heads.index(header)


def _count_text(browser, table="lb-1") -> str:
    return browser.js("return document.querySelector('[data-count-for=\"' + arguments[0] + '\"]').textContent", table)


def _hash(browser) -> str:
    return browser.js("return decodeURIComponent(location.hash)")


def test_pages_load_without_console_errors(site, browser):
    pages = [
        site / "index.html",
        site / "suite-browser.html",
        site / "verdicts.html",
        site / "families.html",
        site / "costs.html",
    ]
    for page in pages:
        entries = _open(browser, page)
        assert _problems(entries) == [], (page.name, entries)
        assert browser.alert_text() is None, page.name
        assert browser.js("return document.title")
    # one run.html draws each run from its data: titled by suite, row, backbone and seed, metrics named as the
    # leaderboard names them, no Python dict
    assert len(_run_ids(site)) == 3
    for run_id in _run_ids(site):
        entries = _open_run(browser, site, run_id)
        assert _problems(entries) == [], (run_id, entries)
        assert browser.alert_text() is None, run_id
        title = browser.js("return document.title")
        assert title.startswith("browser · ") and title.endswith(" · preact-resnet · seed 0 — run " + run_id), title
        text = browser.js("return document.getElementById('run').textContent")
        assert "Top-1 (%)" in text and "{'" not in text.split("Spec (")[0]
        # the record itself, offered as one file of its own (built in the page from the shard's copy)
        link = browser.js(
            "var a = document.getElementById('run-record'); return [a.getAttribute('href'), a.getAttribute('download')]"
        )
        assert link[0].startswith("blob:") and link[1] == f"{run_id}.json", link
        blob = browser.js(
            "var x = new XMLHttpRequest(); x.open('GET', arguments[0], false); x.send(); return x.responseText", link[0]
        )
        shard = json.loads((site / data_href(run_id)).read_text())
        assert json.loads(blob) == shard[run_id]
    # an address naming no run of the site says so (and loads nothing that fails)
    _open(browser, site / "run.html")
    assert browser.js("return document.getElementById('run').getAttribute('data-state')") == "no-id"
    # the inline script ran to its end on the pages with tables: it fills in the row counters
    _open(browser, site / "families.html")
    assert _count_text(browser, "families").endswith(" rows")
    _open(browser, site / "suite-browser.html")
    assert _count_text(browser) == "3 of 3 rows"


def test_header_click_sorts_numerically_and_the_hash_is_a_permalink(site, browser):
    page = site / "suite-browser.html"
    _open(browser, page)
    col = _col(browser, "Fixed")  # fixed parameters: 0 (conv), 144 (frozen conv stem), 14337 (sep-chans DCT bank)
    before = _rows(browser, col=col)
    keys = sorted(float(r["key"]) for r in before)
    # as strings "0.0" < "14337.0" < "144.0": a text sort would give another order than the numeric one
    assert keys == [0.0, 144.0, 14337.0]
    th = browser.find(f"#lb-1 thead th:nth-child({col + 1})")

    th.click()
    desc = _rows(browser, col=col)
    assert [float(r["key"]) for r in desc] == sorted(keys, reverse=True)
    assert desc[0]["family"] == "sep-chans"
    assert browser.js("return arguments[0].getAttribute('aria-sort')", th) == "descending"
    assert f"sort.lb-1={col}:desc" in _hash(browser)

    th.click()
    asc = _rows(browser, col=col)
    assert [float(r["key"]) for r in asc] == keys
    assert [r["label"] for r in asc] == [r["label"] for r in reversed(desc)]
    assert [r["label"] for r in asc] != [r["label"] for r in desc]
    assert browser.js("return arguments[0].getAttribute('aria-sort')", th) == "ascending"
    assert f"sort.lb-1={col}:asc" in _hash(browser)

    # reloading restores the order from the hash; so does opening the link fresh
    browser.refresh()
    assert [r["label"] for r in _rows(browser)] == [r["label"] for r in asc]
    url = browser.js("return location.href")
    assert "#" in url
    assert _problems(_open(browser, page, "#" + url.split("#", 1)[1])) == []
    assert [r["label"] for r in _rows(browser)] == [r["label"] for r in asc]
    _open(browser, page, f"#sort.lb-1={col}%3Adesc")
    assert [r["label"] for r in _rows(browser)] == [r["label"] for r in desc]
    assert browser.js("return document.querySelector('#lb-1 thead th[aria-sort]').cellIndex") == col


def test_rows_without_a_value_sort_last_both_ways(site, browser):
    """A failed run leaves empty cells (data-sort=""); they stay below the measured rows in either direction."""
    _open(browser, site / "suite-browser.html")
    col = _col(browser, "Fixed")
    # a copy of a row as a failed run renders it: no value in the column
    browser.js(
        "var tb = document.querySelector('#lb-1 tbody'), tr = tb.rows[0].cloneNode(true);"
        "tr.cells[1].textContent = 'failed-row'; tr.cells[arguments[0]].setAttribute('data-sort', '');"
        "tr.cells[arguments[0]].textContent = '\u2014'; tb.insertBefore(tr, tb.rows[1]);",
        col,
    )
    th = browser.find(f"#lb-1 thead th:nth-child({col + 1})")
    for direction in ("desc", "asc"):
        th.click()
        rows = _rows(browser, col=col)
        assert [r["label"] for r in rows][-1] == "failed-row", (direction, rows)
        keys = [float(r["key"]) for r in rows[:-1]]
        assert keys == sorted(keys, reverse=direction == "desc")


def test_family_filter_and_search_hide_rows_and_update_the_counter(site, browser):
    page = site / "suite-browser.html"
    _open(browser, page)
    assert _count_text(browser) == "3 of 3 rows"
    assert all(r["shown"] for r in _rows(browser))

    browser.find('select[data-filter-for="lb-1"][data-filter="family"] option[value="sep-chans"]').click()
    rows = _rows(browser)
    assert [r["family"] for r in rows if r["shown"]] == ["sep-chans"]
    assert sorted(r["family"] for r in rows if r["hidden"]) == ["conv", "conv"]
    assert _count_text(browser) == "1 of 3 rows"
    assert "f.lb-1.family=sep-chans" in _hash(browser)
    # the filter is part of the permalink
    browser.refresh()
    assert [r["family"] for r in _rows(browser) if r["shown"]] == ["sep-chans"]
    assert browser.js("return document.querySelector('select[data-filter=\"family\"]').value") == "sep-chans"
    assert _count_text(browser) == "1 of 3 rows"

    browser.find('select[data-filter-for="lb-1"][data-filter="family"] option[value=""]').click()
    assert _count_text(browser) == "3 of 3 rows"
    assert "family" not in _hash(browser)

    box = browser.find('input[data-filter-for="lb-1"][data-filter="q"]')
    _type(box, "ONERROR")  # case-insensitive; only the HTML-looking label contains it
    assert [r["label"] for r in _rows(browser) if r["shown"]] == [EVIL]
    assert _count_text(browser) == "1 of 3 rows"
    assert "q.lb-1=ONERROR" in _hash(browser)
    box.clear()
    _type(box, "sep-")
    assert [r["family"] for r in _rows(browser) if r["shown"]] == ["sep-chans"]
    # family "conv" and search "sep-" together: nothing left
    browser.find('select[data-filter-for="lb-1"][data-filter="family"] option[value="conv"]').click()
    assert _count_text(browser) == "0 of 3 rows"
    assert not any(r["shown"] for r in _rows(browser))


PLOTS_JS = """
return Array.prototype.map.call(document.querySelectorAll(arguments[0]), function (s) {
  var r = s.getBoundingClientRect();
  var size = function (sel) { return Array.prototype.map.call(s.querySelectorAll(sel), function (e) {
    var b = e.getBoundingClientRect(); return [b.width, b.height, b.left - r.left, b.top - r.top]; }); };
  return {w: r.width, h: r.height, circles: size('.mark'), polylines: size('polyline'),
          points: Array.prototype.map.call(s.querySelectorAll('polyline'), function (p) { return p.points.numberOfItems; })};
});"""


def test_svg_plots_render_with_marks(site, browser):
    _open(browser, site / "suite-browser.html")
    plots = browser.js(PLOTS_JS, ".plots svg")
    assert len(plots) >= 3  # accuracy vs MACs, Pareto plots, accuracy per epoch
    for p in plots:
        assert p["w"] > 100 and p["h"] > 100, p
        assert len(p["circles"]) >= 3, p  # one mark per row at least
        for w, h, x, y in p["circles"]:
            assert w > 0 and h > 0 and -1 <= x <= p["w"] and -1 <= y <= p["h"]
    # the per-epoch curves: one polyline per row through both epochs, drawn with a visible extent
    lines = [p for p in plots if p["polylines"] and max(p["points"]) >= 2]
    assert lines, plots
    assert sum(p["points"].count(2) for p in lines) >= 3
    assert all(w > 0 or h > 0 for p in lines for w, h, _, _ in p["polylines"])

    for run_id in _run_ids(site):
        _open_run(browser, site, run_id)
        (p,) = browser.js(PLOTS_JS, "figure svg")
        assert p["w"] > 100 and p["h"] > 100
        assert p["polylines"] and len(p["circles"]) >= 2 and max(p["points"]) == 2


def _dialogs(entries: list[dict]) -> list[str]:
    return [e["message"] for e in entries if e["message"].startswith("dialog opened")]


def test_html_in_a_row_label_stays_text(site, browser):
    entries = _open(browser, site / "suite-browser.html")
    time.sleep(0.2)  # an onerror handler would have fired by now
    assert _dialogs(entries) == [] and browser.alert_text() is None, "the label's markup ran: alert() was called"
    assert _problems(entries) == []  # an <img src=x> would also log a failed load
    assert EVIL in [r["label"] for r in _rows(browser)]
    assert browser.js("return document.querySelectorAll('img, [onerror]').length") == 0
    cells = browser.js(
        "var c = Array.prototype.filter.call(document.querySelectorAll('#lb-1 tbody td'),"
        " function (td) { return td.textContent.indexOf('<img') >= 0; });"
        " return c.map(function (td) { return [td.textContent.trim(), td.querySelectorAll('*').length]; });"
    )
    # literal text inside the <b> wrapper (the row's label below it), no element made from it
    assert cells == [[EVIL + "evil-row", 2]]
    # the SVG point labels and tooltips carry the same text, not markup
    svg_text = browser.js(
        "return Array.prototype.map.call(document.querySelectorAll('.plots svg text, .plots svg title'),"
        " function (t) { return t.textContent; }).join('\\n')"
    )
    assert EVIL in svg_text
    # the run page of that row names it in its heading, as text
    for run_id in _run_ids(site):
        entries = _open_run(browser, site, run_id)
        if EVIL in browser.js("return document.querySelector('#run h1').textContent"):
            time.sleep(0.2)
            assert _dialogs(entries) == [] and browser.alert_text() is None
            assert _problems(entries) == []
            assert browser.js("return document.querySelectorAll('img, [onerror]').length") == 0
            break
    else:
        pytest.fail("no run page names the HTML-labelled row")


def test_numeric_sort_keys_are_finite_numbers(site, browser):
    """Every numeric sort key the leaderboard carries parses as a finite number in the browser."""
    _open(browser, site / "suite-browser.html")
    keys = browser.js(
        "return Array.prototype.map.call(document.querySelectorAll('#lb-1 td[data-sort]'),"
        " function (td) { return td.getAttribute('data-sort'); })"
    )
    nums = [k for k in keys if k != ""]
    assert len(nums) >= 3 * 6
    assert all(math.isfinite(float(k)) for k in nums)


# -- readable at 1,400 px, on the small site and on 10,000 synthetic records ------------------------------------

LAYOUT_JS = """
var vw = document.documentElement.clientWidth, out = {page: document.documentElement.scrollWidth, vw: vw,
  hidden: [], overlaps: [], clipped: [], labels: 0, tables: 0, plots: 0};
document.querySelectorAll('table').forEach(function (t) {
  if (!t.offsetParent) return;  // inside a closed <details>
  out.tables++;
  Array.prototype.forEach.call(t.tHead ? t.tHead.rows[0].cells : [], function (th) {
    var r = th.getBoundingClientRect();
    if (r.right > vw + 1 || r.left < -1 || r.width < 4)
      out.hidden.push((t.id || 'table') + ': ' + th.textContent.trim().slice(0, 30) + ' @' + Math.round(r.left) + '-' + Math.round(r.right));
  });
});
document.querySelectorAll('svg.plot').forEach(function (s, si) {
  out.plots++;
  var box = s.getBoundingClientRect();
  var texts = Array.prototype.map.call(s.querySelectorAll('text'), function (e) {
    return {r: e.getBoundingClientRect(), label: e.classList.contains('pt-label'), t: e.textContent}; });
  texts.forEach(function (a) {
    if (a.r.left < box.left - 0.5 || a.r.right > box.right + 0.5 || a.r.top < box.top - 0.5 || a.r.bottom > box.bottom + 0.5)
      out.clipped.push(si + ': ' + a.t);
  });
  var labels = texts.filter(function (a) { return a.label; });
  out.labels += labels.length;
  for (var i = 0; i < labels.length; i++) for (var j = i + 1; j < labels.length; j++) {
    var a = labels[i].r, b = labels[j].r;
    var w = Math.min(a.right, b.right) - Math.max(a.left, b.left), h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
    if (w > 0.5 && h > 0.5) out.overlaps.push(si + ': ' + labels[i].t + ' / ' + labels[j].t);
  }
});
return out;"""


def _layout(browser, page: Path) -> dict:
    problems = _problems(_open(browser, page))
    assert problems == [], (page.name, problems)
    return browser.js(LAYOUT_JS)


def _assert_readable(layout: dict, name: str):
    assert layout["page"] <= layout["vw"] + 1, (name, "the page scrolls sideways", layout["page"])
    assert layout["hidden"] == [], (name, layout["hidden"])
    assert layout["overlaps"] == [], (name, layout["overlaps"])
    assert layout["clipped"] == [], (name, layout["clipped"])


def test_small_site_readable_at_1400(site, browser):
    assert browser.js("return window.innerWidth") == WIDTH
    for page in [site / "index.html", site / "suite-browser.html"]:
        layout = _layout(browser, page)
        _assert_readable(layout, page.name)
        assert layout["tables"] >= 1
    for run_id in _run_ids(site):
        assert _problems(_open_run(browser, site, run_id)) == []
        layout = browser.js(LAYOUT_JS)
        _assert_readable(layout, run_id)
        assert layout["tables"] >= 1
    # the index answers at a glance: the family × suite summary and the claims board
    _open(browser, site / "index.html")
    heads = browser.js(
        "return Array.prototype.map.call(document.querySelectorAll('#summary-table thead th'),"
        " function (th) { return th.textContent.replace(/\\s+/g, ' ').trim(); })"
    )
    assert heads[0] == "Family" and heads[1].startswith("browser")
    cells = browser.js(
        "return Array.prototype.map.call(document.querySelectorAll('#summary-table tbody tr'),"
        " function (tr) { return [tr.cells[0].textContent.trim(), tr.cells[1].textContent.replace(/\\s+/g, ' ').trim(),"
        " tr.cells[1].className]; })"
    )
    by_family = {f: (text, cls) for f, text, cls in cells}
    assert "baseline" in by_family["conv"][0] and by_family["conv"][1] == "cell-base"
    assert "MAC ×" in by_family["sep-chans"][0] and "time ×" in by_family["sep-chans"][0]
    assert "n=1" in by_family["sep-chans"][0] and by_family["sep-chans"][1].startswith("cell-")


def _synthetic_results(template_dir: Path, out: Path, n_target: int = 10_000) -> int:
    """Fake records in the harness's format, cloned from a real record with new specs (so new run ids)."""
    from bench.zoo.layers import LAYERS
    from bench.spec.identity import IDENTITY_VERSION, run_id

    template = json.loads(sorted(template_dir.glob("*.json"))[0].read_text())
    for key in ("history", "curves", "artifacts"):
        template.pop(key, None)
    families = LAYERS.names()
    rng = random.Random(0)
    suites, rows = ("synth-a", "synth-b"), 19
    seeds = math.ceil(n_target / (len(suites) * rows))
    n = 0
    for suite in suites:
        (out / suite).mkdir(parents=True)
        for i in range(rows):
            fam = families[i % len(families)]
            label = f"{fam}-v{i:02d}"
            base = rng.uniform(40, 99.5)
            for seed in range(seeds):
                rec = copy.deepcopy(template)
                spec = rec["spec"]
                spec["suite"], spec["seed"] = suite, seed
                # rows of one family differ in an option (rows differing in name only would be the same run)
                spec["layer"] = {"name": fam, "options": {"row": i}, "label": label, "stem": None}
                rec["id"], rec["identity_version"] = run_id(spec), IDENTITY_VERSION
                rec["suite"]["name"], rec["label"] = suite, label
                rec["metrics"]["top1"] = min(100.0, base + rng.gauss(0, 0.8))
                rec["macs"] = int(1e6 * (1 + i) ** 1.7)
                rec["timing"]["train_s"] = 10.0 * (1 + i % 7) * rng.uniform(0.9, 1.1)
                if suite == "synth-b" and seed % 2:  # one suite measured on two devices: never mixed in one table
                    rec["env"] = dict(rec.get("env") or {}, device="CPU: Other machine (4 threads)")
                (out / suite / f"{label}--s{seed}--{rec['id']}.json").write_text(json.dumps(rec))
                n += 1
    return n


@pytest.fixture(scope="module")
def big_site(site, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("big_site")
    t0 = time.monotonic()
    n = _synthetic_results(site.parent / "results" / "browser", tmp / "results")
    assert n >= 10_000
    from bench.report.site import build_site

    summary = build_site(tmp / "results", tmp / "suites", tmp / "site")
    assert summary["records"] == n and not summary["problems"], summary["problems"][:3]
    print(f"10k site built in {time.monotonic() - t0:.1f} s")
    return tmp / "site"


def test_ten_thousand_records_stay_readable(big_site, browser):
    for page in ("index.html", "suite-synth-a.html", "suite-synth-b.html"):
        layout = _layout(browser, big_site / page)
        _assert_readable(layout, page)
        if page != "index.html":
            assert layout["plots"] >= 2 and layout["labels"] >= 1
    # run lists collapse: a count, the links behind a closed <details>
    _open(browser, big_site / "suite-synth-a.html")
    runs = browser.js(
        "return Array.prototype.map.call(document.querySelectorAll('#lb-1 tbody tr'), function (tr) {"
        " var c = tr.cells[tr.cells.length - 1], d = c.querySelector('details');"
        " return [c.getBoundingClientRect().height, d ? d.open : null, d ? d.querySelector('summary').textContent : '',"
        " c.querySelectorAll('a').length]; })"
    )
    assert len(runs) == 19
    for height, is_open, summary, links in runs:
        assert is_open is False and summary.endswith(" runs") and links == int(summary.split()[0]) >= 264
        assert height < 80, height
    # one device per table: synth-b's two devices make two leaderboards, each naming its one device
    _open(browser, big_site / "suite-synth-b.html")
    measured = browser.js(
        "return Array.prototype.map.call(document.querySelectorAll('.protocol .muted'),"
        " function (d) { return d.textContent.replace(/\\s+/g, ' '); })"
    )
    devices = [m for m in measured if "Measured on" in m]
    assert len(devices) == 2 and all(";" not in d.split("Measured on:")[1].split(".")[0] for d in devices), devices


# -- issue 20: the first screen, any width, keyboard and captions, on the site of the committed records ----------

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def real_site(tmp_path_factory):
    """The site of the repository's own results/ and suites/ (what the committed site/ is built from)."""
    from bench.report.site import build_site

    out = tmp_path_factory.mktemp("real_site") / "site"
    summary = build_site(ROOT / "results", ROOT / "suites", out)
    assert summary["records"] > 0
    return out


BOX_JS = "var r = arguments[0].getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom, r.width, r.height];"

WIDTH_JS = """
var vw = document.documentElement.clientWidth, out = {sw: document.documentElement.scrollWidth, cw: vw,
  overlaps: [], verdicts: [], rows: 0};
document.querySelectorAll('svg.plot').forEach(function (s, si) {
  var t = Array.prototype.map.call(s.querySelectorAll('text.pt-label, text.legend'), function (e) {
    return {r: e.getBoundingClientRect(), t: e.textContent}; });
  for (var i = 0; i < t.length; i++) for (var j = i + 1; j < t.length; j++) {
    var a = t[i].r, b = t[j].r;
    if (Math.min(a.right, b.right) - Math.max(a.left, b.left) > 0.5 && Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top) > 0.5)
      out.overlaps.push(si + ': ' + t[i].t + ' / ' + t[j].t);
  }
});
var first = document.querySelector('table');
if (first && first.tBodies[0]) Array.prototype.forEach.call(first.tBodies[0].rows, function (tr) {
  var c = tr.querySelector('[data-verdict-cell]');
  if (!c) return;
  out.rows++;
  var r = c.getBoundingClientRect();
  if (r.width < 4 || r.height < 4 || r.left < -1 || r.right > vw + 1) out.verdicts.push(c.textContent.trim().slice(0, 40) + ' @' + Math.round(r.left) + '-' + Math.round(r.right));
});
return out;"""


CONTRAST_JS = """
function rgb(s) { var m = s.match(/[0-9.]+/g).map(Number); return {r: m[0], g: m[1], b: m[2], a: m.length > 3 ? m[3] : 1}; }
function lum(c) { return [c.r, c.g, c.b].map(function (v) { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); })
  .reduce(function (s, v, i) { return s + v * [0.2126, 0.7152, 0.0722][i]; }, 0); }
var worst = [];
document.querySelectorAll('.muted, caption, figcaption, .verdict, .badge').forEach(function (el) {
  if (!el.textContent.trim() || !el.offsetParent) return;
  var fg = rgb(getComputedStyle(el).color), bg = null;
  for (var e = el; e && !bg; e = e.parentElement) { var c = rgb(getComputedStyle(e).backgroundColor); if (c.a > 0.5) bg = c; }
  bg = bg || {r: 255, g: 255, b: 255};
  var a = lum(fg), b = lum(bg), ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  if (ratio < 4.5) worst.push(el.className + ' ' + ratio.toFixed(2) + ': ' + el.textContent.trim().slice(0, 30));
});
return worst;"""


def _at_width(browser, width: int, height: int = 1000):
    browser.d.set_window_size(width, height)
    return browser.js("return [window.innerWidth, window.innerHeight]")


def test_first_screen_holds_the_scoreboard_and_the_overview_plot(real_site, browser):
    """At 1,400 × 900: the per-document scoreboard (five documents, counts linking to their filtered list) and the
    overview plot end inside the first viewport; the index is at most six screens tall; every table of the index
    and of the pages it moved content to has a caption."""
    try:
        w, h = _at_width(browser, WIDTH, 900)
        assert w == WIDTH and h <= 900
        assert _problems(_open(browser, real_site / "index.html")) == []
        board = browser.find("#scoreboard-table")
        plot = browser.find("#overview svg.plot")
        for el in (board, plot):
            left, top, right, bottom, bw, bh = browser.js(BOX_JS, el)
            assert bw > 100 and bh > 100 and bottom <= h and right <= w, (el.tag_name, bottom, right)
        docs = browser.js(
            "return Array.prototype.map.call(document.querySelectorAll('#scoreboard-table tbody tr'),"
            " function (tr) { return [tr.cells[0].textContent, tr.querySelectorAll('td a').length,"
            " tr.querySelector('td a').getAttribute('href')]; })"
        )
        assert [d[0].split()[0] for d in docs] == ["000", "001", "002", "003", "004"]
        assert all(n == 4 for _, n, _ in docs)
        assert docs[3][2] == "verdicts.html#f.verdicts.document=003&f.verdicts.verdict=reproduced"
        assert "Randomness in Deconvolutional Networks for Visual Representation" in docs[1][0]
        assert browser.js("return document.documentElement.scrollHeight") <= 6 * 900
        assert browser.js("return document.querySelectorAll('table').length") >= 4
        assert (
            browser.js(
                "return Array.prototype.filter.call(document.querySelectorAll('table'),"
                " function (t) { return !t.caption || !t.caption.textContent.trim(); }).length"
            )
            == 0
        )
        assert browser.js(CONTRAST_JS) == []  # muted text, captions and chips: contrast ≥ 4.5:1
        # a count opens the list it counts: the filtered verdict table, scrolled into view
        link = browser.js(
            "return Array.prototype.filter.call(document.querySelectorAll('#scoreboard-table td a'),"
            " function (a) { return +a.textContent > 0; })[0]"
        )
        n, href = int(link.text), link.get_attribute("href").split("#", 1)[1]
        _click_to(browser, link, "verdicts.html")
        shown = browser.js(
            "return Array.prototype.filter.call(document.querySelectorAll('#verdicts tbody tr'),"
            " function (tr) { return !tr.hidden; }).map(function (tr) {"
            " return tr.getAttribute('data-document') + '|' + tr.getAttribute('data-verdict'); })"
        )
        doc, verdict = (kv.split("=")[1] for kv in href.replace("%20", " ").split("&"))
        assert len(shown) == n and set(shown) == {f"{doc}|{verdict}"}
        assert browser.js("return scrollY") > 0 and -2 <= browser.js(BOX_JS, browser.find("#verdicts"))[1] < h
        # the header row sticks to the top of its scroll box when the box scrolls (the box, not the page, scrolls)
        sticky = browser.js(
            "var box = document.getElementById('verdicts').closest('.scroll');"
            " location.hash = ''; document.querySelectorAll('#verdicts tbody tr').forEach(function (tr) { tr.hidden = false; });"
            " box.scrollTop = 400; var th = document.querySelector('#verdicts thead th');"
            " return [box.scrollTop, th.getBoundingClientRect().top - box.getBoundingClientRect().top];"
        )
        assert sticky[0] > 100 and abs(sticky[1]) <= 1, sticky
        assert (
            browser.js(
                "return Array.prototype.filter.call(document.querySelectorAll('table'),"
                " function (t) { return !t.caption; }).length"
            )
            == 0
        )
    finally:
        _at_width(browser, WIDTH)


def test_not_yet_run_verdicts_are_collapsed_and_the_scoreboard_counts_open_them(real_site, browser):
    """verdicts.html lists the numbers and claims with a verdict; those not yet run are one closed expander
    ("N not yet run") with their own table. The scoreboard's not-yet-run count links to that table filtered to
    its document and opens it; so does an old address filtering the verdict table to 'not yet run'."""
    assert _problems(_open(browser, real_site / "verdicts.html")) == []
    unrun = browser.js("return document.querySelectorAll('#verdicts-unrun tbody tr').length")
    assert unrun > 0
    assert (
        browser.js("return document.querySelectorAll('#verdicts tbody tr[data-verdict=\"not yet run\"]').length") == 0
    )
    assert browser.js("return document.querySelector('#not-yet-run > summary').textContent") == f"{unrun} not yet run"
    assert browser.js("return document.getElementById('not-yet-run').open") is False
    _open(browser, real_site / "index.html")
    link = browser.js(
        "return Array.prototype.filter.call(document.querySelectorAll('#scoreboard-table td a'),"
        " function (a) { return a.closest('td').getAttribute('data-verdict-cell') === 'not yet run'"
        " && +a.textContent > 0; })[0]"
    )
    n, href = int(link.text), link.get_attribute("href").split("#", 1)[1]
    doc = href.split("=", 1)[1]
    _click_to(browser, link, "verdicts.html")
    assert browser.js("return document.getElementById('not-yet-run').open") is True
    shown = browser.js(
        "return Array.prototype.filter.call(document.querySelectorAll('#verdicts-unrun tbody tr'),"
        " function (tr) { return !tr.hidden; }).map(function (tr) { return tr.getAttribute('data-document'); })"
    )
    assert len(shown) == n and set(shown) == {doc}
    assert browser.js("return scrollY") > 0
    # an address of the former single table still lands on the same list
    _open(browser, real_site / "verdicts.html", f"#f.verdicts.document={doc}&f.verdicts.verdict=not%20yet%20run")
    assert browser.js("return document.getElementById('not-yet-run').open") is True
    assert _hash(browser) == f"#f.verdicts-unrun.document={doc}"
    assert len(browser.js("return document.querySelectorAll('#verdicts-unrun tbody tr:not([hidden])')")) == n


def test_no_sideways_scroll_at_800_and_verdicts_visible_at_390(real_site, site, browser):
    """No page scrolls sideways at 800 px (index, every suite page, the moved-out pages); at 390 px every row of
    a page's first table shows its verdict inside the viewport; no two plot labels overlap at either width."""
    pages = [
        real_site / "index.html",
        real_site / "verdicts.html",
        *sorted(real_site.glob("suite-*.html")),
        site / "suite-browser.html",
    ]
    assert len(pages) > 10
    try:
        for width in (800, 390):
            _at_width(browser, width)
            checked = 0
            for page in pages:
                assert _problems(_open(browser, page)) == [], page.name
                out = browser.js(WIDTH_JS)
                assert out["sw"] <= out["cw"], (width, page.name, "scrolls sideways", out["sw"], out["cw"])
                assert out["overlaps"] == [], (width, page.name, out["overlaps"])
                if width == 390:
                    assert out["verdicts"] == [], (page.name, out["verdicts"])
                    checked += out["rows"]
            if width == 390:
                assert checked >= 20  # the scoreboard, the headline and the leaderboards have verdict cells
    finally:
        _at_width(browser, WIDTH)


def test_sortable_headers_are_buttons_that_sort_on_enter(site, browser):
    _open(browser, site / "suite-browser.html")
    missing = browser.js(
        "return Array.prototype.filter.call(document.querySelectorAll('table.sortable thead tr:first-child th'),"
        " function (th) { var b = th.querySelector('button.sort'); return !b || b.tabIndex < 0; }).length"
    )
    assert missing == 0
    col = _col(browser, "Fixed")
    button = browser.find(f"#lb-1 thead th:nth-child({col + 1}) button.sort")
    button.send_keys(Keys.ENTER)
    assert browser.js("return document.activeElement === arguments[0]", button)
    desc = [float(r["key"]) for r in _rows(browser, col=col)]
    assert desc == sorted(desc, reverse=True) and desc != sorted(desc)
    th = browser.find(f"#lb-1 thead th:nth-child({col + 1})")
    assert th.get_attribute("aria-sort") == "descending"
    button.send_keys(Keys.ENTER)
    assert [float(r["key"]) for r in _rows(browser, col=col)] == sorted(desc)
    assert th.get_attribute("aria-sort") == "ascending"
    assert (
        browser.js(
            "return Array.prototype.filter.call(document.querySelectorAll('table'),"
            " function (t) { return !t.caption; }).length"
        )
        == 0
    )
