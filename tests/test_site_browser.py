"""The generated site in a real headless Chromium: no console errors, sorting, filters, permalinks, plots, escaping.

The browser is driven through the system chromedriver with a few lines of W3C WebDriver over HTTP (standard
library only, so no client package and no extra dependency). The site comes from a tiny real run of a three-row
suite (conv, sep-chans, and a conv row whose label is an HTML injection attempt).
"""
from __future__ import annotations

import json
import math
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from bench.cli import main

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
    pytest.skip(f"needs Debian's chromium and chromium-driver ({CHROMIUM}, {CHROMEDRIVER}); "
                "install with: apt-get install chromium chromium-driver", allow_module_level=True)

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
  - {{name: conv, label: {json.dumps(EVIL)}, stem: frozen-conv}}
seeds: [0]
"""
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # W3C WebDriver element reference key


class WebDriverError(RuntimeError):
    def __init__(self, error: str, message: str):
        super().__init__(f"{error}: {message}")
        self.error = error


class _Browser:
    """A minimal W3C WebDriver client for chromedriver (only the commands these tests use)."""

    def __init__(self, profile_dir: Path):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.proc = subprocess.Popen([str(CHROMEDRIVER), f"--port={self.port}"], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        self.sid = None
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/status", timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.proc.kill()
                    raise RuntimeError("chromedriver did not start")
                time.sleep(0.05)
        args = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1400,1000", f"--user-data-dir={profile_dir}"]
        caps = {"browserName": "chrome", "pageLoadStrategy": "normal",
                # leave a dialog open so that the test can see it (GET /alert/text) instead of having it dismissed
                "unhandledPromptBehavior": "ignore",
                "goog:loggingPrefs": {"browser": "ALL"},
                "goog:chromeOptions": {"binary": str(CHROMIUM), "args": args}}
        try:
            self.sid = self._req("POST", "/session", {"capabilities": {"alwaysMatch": caps}})["sessionId"]
        except Exception:
            self.proc.kill()
            raise

    def _req(self, method: str, path: str, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json; charset=utf-8"})
        try:
            with urllib.request.urlopen(req, timeout=60) as f:
                return json.load(f)["value"]
        except urllib.error.HTTPError as e:
            value = json.load(e).get("value", {})
            raise WebDriverError(value.get("error", str(e.code)), value.get("message", "")) from None

    def _s(self, path: str, method: str = "POST", body=None):
        return self._req(method, f"/session/{self.sid}{path}", {} if body is None and method == "POST" else body)

    # navigation, scripts, elements
    def get(self, url: str):
        self._s("/url", body={"url": url})

    def refresh(self):
        self._s("/refresh")

    def js(self, script: str, *args):
        args = [{ELEMENT: a.id} if isinstance(a, _El) else a for a in args]
        return self._s("/execute/sync", body={"script": script, "args": list(args)})

    def find(self, css: str) -> "_El":
        return _El(self, self._s("/element", body={"using": "css selector", "value": css})[ELEMENT])

    def alert_text(self):
        """Text of an open JavaScript dialog, or None."""
        try:
            return self._s("/alert/text", method="GET")
        except WebDriverError as e:
            if e.error == "no such alert":
                return None
            raise

    def dismiss_alert(self):
        self._s("/alert/dismiss")

    def logs(self) -> list[dict]:
        """Browser console entries (console API calls, uncaught exceptions, failed loads) since the last call."""
        return self._s("/se/log", body={"type": "browser"})

    def quit(self):
        try:
            if self.sid:
                self._s("", method="DELETE")
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class _El:
    def __init__(self, browser: _Browser, eid: str):
        self.b, self.id = browser, eid

    def click(self):
        self.b._s(f"/element/{self.id}/click")

    def type(self, text: str):
        self.b._s(f"/element/{self.id}/value", body={"text": text})

    def clear(self):
        self.b._s(f"/element/{self.id}/clear")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browser_site")
    (tmp / "suites").mkdir()
    (tmp / "suites" / "browser.yaml").write_text(SUITE)
    results, out = tmp / "results", tmp / "site"
    assert main(["run", str(tmp / "suites" / "browser.yaml"), "--results", str(results), "--no-progress",
                 "--device", "cpu"]) == 0
    assert main(["report", "--results", str(results), "--suites", str(tmp / "suites"), "--site", str(out)]) == 0
    records = [json.loads(p.read_text()) for p in (results / "browser").glob("*.json")]
    assert sorted(r["label"] for r in records) == sorted(["conv", "sep-chans", EVIL])
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


def _problems(entries: list[dict]) -> list[str]:
    return [e["message"] for e in entries if e["level"] in ("SEVERE", "WARNING")]


ROWS_JS = """
var t = document.getElementById(arguments[0]), col = arguments[1];
return Array.prototype.map.call(t.tBodies[0].rows, function (tr) {
  var r = tr.getBoundingClientRect();
  return {label: tr.cells[1].textContent.trim(), family: tr.getAttribute('data-family'),
          key: col === null ? null : tr.cells[col].getAttribute('data-sort'),
          hidden: tr.hidden, shown: r.height > 0 && r.width > 0};
});"""


def _rows(browser, table="lb-1", col=None):
    return browser.js(ROWS_JS, table, col)


def _col(browser, header: str, table="lb-1") -> int:
    heads = browser.js("return Array.prototype.map.call(document.getElementById(arguments[0]).tHead.rows[0].cells,"
                       " function (th) { return th.textContent.trim(); })", table)
    return heads.index(header)


def _count_text(browser, table="lb-1") -> str:
    return browser.js("return document.querySelector('[data-count-for=\"' + arguments[0] + '\"]').textContent",
                      table)


def _hash(browser) -> str:
    return browser.js("return decodeURIComponent(location.hash)")


def test_pages_load_without_console_errors(site, browser):
    pages = [site / "index.html", site / "suite-browser.html", *sorted((site / "runs").glob("*.html"))]
    assert len(pages) == 5
    for page in pages:
        entries = _open(browser, page)
        assert _problems(entries) == [], (page.name, entries)
        assert browser.alert_text() is None, page.name
        assert browser.js("return document.title")
    # the inline script ran to its end on the pages with tables: it fills in the row counters
    _open(browser, site / "index.html")
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
    browser.js("var tb = document.querySelector('#lb-1 tbody'), tr = tb.rows[0].cloneNode(true);"
               "tr.cells[1].textContent = 'failed-row'; tr.cells[arguments[0]].setAttribute('data-sort', '');"
               "tr.cells[arguments[0]].textContent = '\u2014'; tb.insertBefore(tr, tb.rows[1]);", col)
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
    box.type("ONERROR")  # case-insensitive; only the HTML-looking label contains it
    assert [r["label"] for r in _rows(browser) if r["shown"]] == [EVIL]
    assert _count_text(browser) == "1 of 3 rows"
    assert "q.lb-1=ONERROR" in _hash(browser)
    box.clear()
    box.type("sep-")
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
  return {w: r.width, h: r.height, circles: size('circle'), polylines: size('polyline'),
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

    for run_page in sorted((site / "runs").glob("*.html")):
        _open(browser, run_page)
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
    cells = browser.js("var c = Array.prototype.filter.call(document.querySelectorAll('#lb-1 tbody td'),"
                       " function (td) { return td.textContent.indexOf('<img') >= 0; });"
                       " return c.map(function (td) { return [td.textContent.trim(), td.querySelectorAll('*').length]; });")
    assert cells == [[EVIL, 1]]  # literal text inside the <b> wrapper, no element made from it
    # the SVG point labels and tooltips carry the same text, not markup
    svg_text = browser.js("return Array.prototype.map.call(document.querySelectorAll('.plots svg text, .plots svg title'),"
                          " function (t) { return t.textContent; }).join('\\n')")
    assert EVIL in svg_text
    # the run page of that row names it in its heading, as text
    for run_page in sorted((site / "runs").glob("*.html")):
        entries = _open(browser, run_page)
        if EVIL in browser.js("return document.querySelector('body > h1').textContent"):
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
    keys = browser.js("return Array.prototype.map.call(document.querySelectorAll('#lb-1 td[data-sort]'),"
                      " function (td) { return td.getAttribute('data-sort'); })")
    nums = [k for k in keys if k != ""]
    assert len(nums) >= 3 * 6
    assert all(math.isfinite(float(k)) for k in nums)
