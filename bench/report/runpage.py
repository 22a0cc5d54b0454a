"""Run pages (issue 20 item 6): one static ``run.html`` draws any run from its record in the browser.

Rendering one HTML page per run was 61 % of a 10,000-record report, so the site now carries each run's data,
not a page per run:

- ``runs/<first two hex digits of the id>.json``: the records of the ids that start with those digits as
  loaded, one object {run id: record} (the no-JavaScript view; every suite page links its runs' shards inside a
  ``<noscript>``); one file per shard rather than per run, since creating 10,000 small files was a large part
  of a 10,000-record report's time;
- ``runs/<first two hex digits of the id>.js``: the same shard for the page, ``convbenchRuns({...})`` holding the records of the
  ids that start with those digits, each with what the page says about it besides the record (its title, its
  suite page, whether the current suite file supersedes it, and how the suite file changed since it ran);
  a ``<script>`` can load it from a page opened straight from disk, where ``fetch`` of a local file cannot;
- ``run.html#<id>``: the page; its script loads the id's shard and draws the run with ``textContent`` only
  (no record text is ever parsed as markup), and offers the run's record alone as a download (``<id>.json``,
  built in the browser from the shard).

Both files of a shard are written only when their bytes changed, so a report over an existing site leaves the
shards of unchanged records alone.

Every number the page shows comes from the record in the shard.
"""

from __future__ import annotations

import json

from bench.numbers import isnum
from bench.spec.identity import identity

SHARD_DIGITS = 2  # 256 shards: about 40 records each at 10,000 records


def run_href(run_id: str) -> str:
    """The site-relative link to a run's page."""
    return f"run.html#{run_id}"


def data_href(run_id: str) -> str:
    """The site-relative link to the file holding a run's raw record (what the page draws): its shard's
    ``{run id: record}``."""
    return f"runs/{shard_of(run_id)}.json"


def shard_of(run_id: str) -> str:
    return run_id[:SHARD_DIGITS]


def run_title(rec: dict) -> str:
    """``suite · row · backbone · seed N — run <id>``: what a run is, before its hash."""
    spec = rec.get("spec") or {}
    layer = spec.get("layer") or {}
    row = layer.get("display") or rec.get("label") or layer.get("name", "")
    return (
        f"{rec['suite']['name']} · {row} · {(spec.get('backbone') or {}).get('name', '')} · "
        f"seed {spec.get('seed')} — run {rec['id']}"
    )


def _flat(value, prefix: str = "") -> dict:
    """A nested mapping as {dotted path: leaf value} (an empty mapping has no leaves: absent)."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value}


def identity_diff(old_spec: dict, new_spec: dict) -> list[dict]:
    """The run-affecting fields (those the run id hashes) that differ between two specs: dotted path, the
    value when the run was made and the value the current suite file gives (None: absent)."""
    a, b = _flat(identity(old_spec)), _flat(identity(new_spec))
    return [{"field": k, "then": a.get(k), "now": b.get(k)} for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def suite_change(rec: dict, suite, cache: dict) -> dict | None:
    """How the suite file changed since ``rec`` ran, or None when it has not (same sha256) or is not loaded:
    ``{"sha_now", "stale", "diff"}``. A run the current file still produces changed in no run-affecting field
    (``diff`` empty); for a superseded one ``diff`` lists the fields, against the current file's run of the
    same row and seed (under the record's overrides; ``row_gone`` when the file has no such row any more)."""
    then = (rec.get("suite") or {}).get("sha256")
    if suite is None or not then or suite.sha256 == then:
        return None
    out = {"sha_now": suite.sha256, "stale": bool(rec.get("_stale")), "diff": [], "row_gone": False}
    if not rec.get("_stale"):
        return out
    spec = rec.get("spec") or {}
    seed = int(spec.get("seed", 0))
    # a suite's expansion differs from seed to seed only in the ``seed`` field (as in stale_records): expanded
    # once per (suite, overrides) for seed 0 and the record's seed put in, not once per stale record's seed
    key = (suite.name, json.dumps(spec.get("overrides") or {}, sort_keys=True))
    if key not in cache:
        try:
            cache[key] = [s.to_dict() for s in suite.expand(overrides=json.loads(key[1]), seeds=[0])]
        except Exception:  # a suite this report cannot expand (a plug-in it does not load): no diff to show
            cache[key] = []
    same = [
        dict(s, seed=seed)
        for s in cache[key]
        if (s.get("layer") or {}).get("label") == rec.get("label")
        and (s.get("backbone") or {}).get("name") == (spec.get("backbone") or {}).get("name")
    ]
    if not same:
        out["row_gone"] = True
        return out
    # several option sets of one backbone: the one that differs least
    out["diff"] = min((identity_diff(spec, s) for s in same), key=len)
    return out


def _public(rec: dict) -> dict:
    """The record as loaded, without the report's own ``_`` keys (the artifacts' site paths stay: the page
    shows the copied images)."""
    return {k: v for k, v in rec.items() if not k.startswith("_")}


def record_json(rec: dict) -> str:
    """The record as loaded (:func:`_public`) as compact JSON text. A record unchanged since it was read from
    its file is its file's compact text (``_json``, set by :func:`bench.records.records.load_records` and dropped
    by whatever changes the record), not encoded again: encoding every record was most of a 10,000-record
    report's run data."""
    text = rec.get("_json")
    if type(text) is str:
        return text
    return _dumps(_public(rec))


def _dumps(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=str)


_quote = json.encoder.encode_basestring  # a str as JSON text, as ``_dumps`` (``ensure_ascii=False``) writes it


def best_test_acc(rec: dict):
    """The best finite ``test_acc`` in a record's history, or None; kept on the record (``_best_acc``), since the
    run data and the suite pages both ask."""
    if "_best_acc" in rec:
        return rec["_best_acc"]
    best = None
    for h in rec.get("history") or ():
        if type(h) is dict:
            v = h.get("test_acc")
            if isnum(v) and (best is None or v > best):
                best = v
    rec["_best_acc"] = best
    return best


def _number(v) -> str:
    """A finite number as JSON text, as ``json.dumps`` writes it."""
    return float.__repr__(v) if isinstance(v, float) else int.__repr__(v)


def write_run_data(site, records: list[dict], suites: dict, metric_names: dict, slug) -> int:
    """Write every shard's ``runs/<shard>.json`` (the records) and ``runs/<shard>.js`` (records and page data),
    each only when changed; returns the number of runs.
    ``metric_names``: per task, metric key → display name; ``slug``: the suite page's file-name rule."""
    shards: dict[str, list[str]] = {}
    blobs: dict[str, list[tuple[str, str]]] = {}  # shard → (run id, record JSON): each record encoded once
    cache: dict = {}
    tasks_seen: set = set()
    pages: dict = {}  # suite name → its page (``slug`` is a pure function of the name: once per suite)
    for rec in records:
        rid = rec["id"]
        blob = record_json(rec)
        key = f'"{rid}"'  # a loaded record's id is 16 hex digits (check_record): its JSON needs no escaping
        best = best_test_acc(rec)
        name = rec["suite"]["name"]
        if name not in pages:
            pages[name] = _quote(f"suite-{slug(name)}.html")
        change = suite_change(rec, suites.get(name), cache)
        # the page's object as ``_dumps`` writes it (sorted keys), assembled from its parts: the encoder's
        # set-up per record was most of this loop's time
        page = (
            f'{{"best_acc":{"null" if best is None else _number(best)},'
            f'"change":{"null" if change is None else _dumps(change)},'
            f'"stale":{"true" if rec.get("_stale") else "false"},'
            f'"suite_page":{pages[name]},"title":{_quote(run_title(rec))}}}'
        )
        tasks_seen.add(rec.get("task"))
        shard = shard_of(rid)
        shards.setdefault(shard, []).append(f'{key}:{{"record":{blob},"page":{page}}}')
        blobs.setdefault(shard, []).append((rid, f"{key}:{blob}"))
    names = _dumps({str(t): metric_names.get(t, {}) for t in sorted(tasks_seen, key=str)})
    for shard, entries in sorted(shards.items()):
        # ids in sorted order: the object ``_dumps`` would write (sorted keys), without encoding a record twice
        site.write_if_changed(f"runs/{shard}.json", "{" + ",".join(e for _, e in sorted(blobs[shard])) + "}\n")
        site.write_if_changed(
            f"runs/{shard}.js", 'convbenchRuns({"metric_names":' + names + ',"runs":{' + ",".join(entries) + "}});\n"
        )
    return len(records)


def read_shard(text: str) -> dict:
    """A shard's data (``convbenchRuns({...});``) as a mapping: for tools and tests."""
    head, tail = "convbenchRuns(", ");\n"
    if not (text.startswith(head) and text.endswith(tail)):
        raise ValueError("not a run-data shard")
    return json.loads(text[len(head) : -len(tail)])
