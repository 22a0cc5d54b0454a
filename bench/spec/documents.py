"""The source documents' metadata (``suites/documents.yaml``): one data file for the report and the suites.

Torch-free (only PyYAML). :func:`load_documents` validates the file and raises :class:`bench.errors.SpecError`
(one line naming the file and the field; the command line exits 2) on anything malformed. Only what a document's
own text states belongs in it (title, authors, year, arXiv id, links); a field the text does not give is left out.
``documents.yaml`` lives beside the suite files but is not a suite: :func:`suite_files` lists the suites alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from bench.errors import SpecError

DOCUMENTS_FILE = "documents.yaml"
#: the committed file (next to the suites)
DEFAULT_PATH = Path(__file__).resolve().parents[2] / "suites" / DOCUMENTS_FILE

ID_RE = re.compile(r"^[0-9]{3}$")
ARXIV_RE = re.compile(r"^[0-9]{4}\.[0-9]{4,5}(v[0-9]+)?$")
URL_RE = re.compile(r"^https?://[^\s<>\"']+$")
KEYS = {"id", "name", "title", "authors", "year", "arxiv", "links", "contents", "file"}
REQUIRED = ("id", "name")


@dataclass(frozen=True)
class Document:
    id: str
    name: str
    title: str = ""
    authors: tuple[str, ...] = ()
    year: int | None = None
    arxiv: str = ""
    links: tuple[tuple[str, str], ...] = field(default_factory=tuple)  # (url, what the document says it is)
    contents: str = ""
    file: str = ""

    @property
    def arxiv_url(self) -> str:
        return f"https://arxiv.org/abs/{self.arxiv}" if self.arxiv else ""

    @property
    def authors_text(self) -> str:
        a = list(self.authors)
        return a[0] + " et al." if len(a) > 3 else ", ".join(a)


def suite_files(folder: str | Path) -> list[Path]:
    """The suite files of a folder (``*.yaml``, ``*.yml``), without the documents file."""
    root = Path(folder)
    return sorted(p for p in root.glob("*.y*ml") if p.suffix in (".yaml", ".yml") and p.name != DOCUMENTS_FILE)


def _text(path: str, where: str, v, required: bool = False) -> str:
    if v is None and not required:
        return ""
    if not isinstance(v, str) or not v.strip():
        raise SpecError(path, where, f"must be a non-empty string, got {v!r}")
    if "\n" in v.strip():
        raise SpecError(path, where, "must be one line")
    return v.strip()


def _document(path: str, i: int, raw) -> Document:
    at = f"documents[{i}]"
    if not isinstance(raw, dict):
        raise SpecError(path, at, f"must be a mapping, got {type(raw).__name__}")
    unknown = sorted(set(map(str, raw)) - KEYS)
    if unknown:
        raise SpecError(path, f"{at}.{unknown[0]}", f"unknown field (known: {', '.join(sorted(KEYS))})")
    for k in REQUIRED:
        if k not in raw:
            raise SpecError(path, f"{at}.{k}", "is required")
    doc_id = raw["id"]
    if not isinstance(doc_id, str) or not ID_RE.match(doc_id):
        raise SpecError(path, f"{at}.id", f'must be three digits in quotes ("003"), got {doc_id!r}')
    at = f"documents[{doc_id}]"
    authors = raw.get("authors")
    if authors is not None and (not isinstance(authors, list) or not authors):
        raise SpecError(path, f"{at}.authors", f"must be a non-empty list of names, got {authors!r}")
    names = tuple(_text(path, f"{at}.authors[{k}]", a, True) for k, a in enumerate(authors or []))
    year = raw.get("year")
    if year is not None and (not isinstance(year, int) or isinstance(year, bool) or not 1900 <= year <= 2100):
        raise SpecError(path, f"{at}.year", f"must be a year between 1900 and 2100, got {year!r}")
    arxiv = _text(path, f"{at}.arxiv", raw.get("arxiv"))
    if arxiv and not ARXIV_RE.match(arxiv):
        raise SpecError(path, f"{at}.arxiv", f"must be an arXiv id such as 1806.01817, got {arxiv!r}")
    links = raw.get("links")
    if links is not None and not isinstance(links, list):
        raise SpecError(path, f"{at}.links", f"must be a list of {{url, text}}, got {links!r}")
    out_links = []
    for k, link in enumerate(links or []):
        where = f"{at}.links[{k}]"
        if not isinstance(link, dict) or set(link) != {"url", "text"}:
            raise SpecError(path, where, f"must be a mapping with exactly url and text, got {link!r}")
        url = _text(path, where + ".url", link["url"], True)
        if not URL_RE.match(url):
            raise SpecError(path, where + ".url", f"must be an http(s) address, got {url!r}")
        out_links.append((url, _text(path, where + ".text", link["text"], True)))
    return Document(
        id=doc_id,
        name=_text(path, f"{at}.name", raw["name"], True),
        title=_text(path, f"{at}.title", raw.get("title")),
        authors=names,
        year=year,
        arxiv=arxiv,
        links=tuple(out_links),
        contents=_text(path, f"{at}.contents", raw.get("contents")),
        file=_text(path, f"{at}.file", raw.get("file")),
    )


def load_documents(path: str | Path = DEFAULT_PATH) -> dict[str, Document]:
    """Documents by id, in the file's order. A missing or malformed file is a :class:`SpecError`."""
    import yaml

    p = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(p, "", f"cannot read ({type(exc).__name__}: {exc})") from None
    try:
        raw = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # libyaml when present
    except yaml.YAMLError as exc:
        raise SpecError(p, "", "invalid YAML: " + " ".join(str(exc).split())) from None
    if not isinstance(raw, dict) or set(raw) != {"documents"}:
        raise SpecError(p, "documents", "the file must be a mapping with one key, documents (a list)")
    if not isinstance(raw["documents"], list) or not raw["documents"]:
        raise SpecError(p, "documents", "must be a non-empty list")
    out: dict[str, Document] = {}
    for i, item in enumerate(raw["documents"]):
        doc = _document(p, i, item)
        if doc.id in out:
            raise SpecError(p, f"documents[{i}].id", f"duplicate id {doc.id!r}")
        out[doc.id] = doc
    return out
