"""The site folder is owned (issue 19): ``bench report`` writes only into a folder it created or one carrying
its marker, never through a symbolic link, and deletes only files its manifest says it wrote.

The marker, ``.convbench-site.json`` in the site folder, is the manifest: the relative paths of every file the
last build wrote. A build collects the files it writes; at the end the files of the old manifest that it did
not write again are removed (only plain files and links, never a folder's contents it did not list).
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from pathlib import Path

from bench.errors import SpecError
from bench.records.records import write_bytes_atomic

MARKER = ".convbench-site.json"
MARKER_FORMAT = 1
SUBFOLDERS = ("data", "artifacts", "runs")  # the folders a build writes into


class Site:
    """A site folder claimed for one build: safe writes (atomic, never through a link) and a manifest."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.previous = claim(self.root)
        self.written: set[str] = set()
        self._folders: set[str] = set()  # folders already checked by path() in this build
        self._mark(self.previous)  # owned from now on: a build that stops half-way leaves a folder it may reuse

    def path(self, rel: str) -> Path:
        """``root/rel`` with every folder on the way created, none of them a link (SpecError otherwise)."""
        if isinstance(rel, str):  # a file in a folder already checked in this build: no Path parsing per file
            head, sep, name = rel.rpartition("/")
            if sep and head in self._folders and name not in ("", ".", ".."):
                return self.root / rel
        parts = Path(rel).parts
        if not parts or Path(rel).is_absolute() or ".." in parts or parts[0] == MARKER:
            raise SpecError(self.root, rel, "not a path inside the site")
        parent = str(Path(*parts[:-1])) if len(parts) > 1 else ""
        if parent in self._folders:
            return self.root / rel
        folder = self.root
        for part in parts[:-1]:
            folder = folder / part
            try:
                st = os.lstat(folder)
            except FileNotFoundError:
                folder.mkdir()
                continue
            if stat.S_ISLNK(st.st_mode):
                raise SpecError(
                    self.root,
                    str(folder.relative_to(self.root)),
                    "is a symbolic link: a site holds its own folders, the report does not write through links",
                )
            if not stat.S_ISDIR(st.st_mode):
                raise SpecError(self.root, str(folder.relative_to(self.root)), "is a file, not a folder")
        self._folders.add(parent)
        return self.root / rel

    def write(self, rel: str, data: bytes | str) -> Path:
        """Write ``rel`` atomically (a link at that name is replaced, never followed) and list it."""
        target = self.path(rel)
        write_bytes_atomic(target, data.encode() if isinstance(data, str) else data, durable=False)
        self.written.add(rel)
        return target

    def write_if_changed(self, rel: str, data: bytes | str) -> bool:
        """List ``rel`` and write it unless it already is a plain file with exactly these bytes (then it is not
        touched: its mtime stays). A new file is created exclusively (``O_EXCL``: never through a link, never
        over another file), an existing one replaced atomically as :meth:`write` does. True if written."""
        blob = data.encode() if isinstance(data, str) else data
        target = self.path(rel)
        self.written.add(rel)
        if rel not in self.previous and self._create(target, blob):  # new to this site: no read attempt first
            return True
        try:
            fd = os.open(target, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError:
            if not self._create(target, blob):  # made meanwhile, or a link: replaced atomically
                self.write(rel, blob)
            return True
        except OSError:  # a link (ELOOP) or unreadable: replaced atomically
            self.write(rel, blob)
            return True
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            same = stat.S_ISREG(st.st_mode) and st.st_size == len(blob) and f.read() == blob
        if not same:
            self.write(rel, blob)
        return not same

    @staticmethod
    def _create(target: Path, blob: bytes) -> bool:
        """Create ``target`` exclusively (``O_EXCL``: never through a link, never over another file) holding
        ``blob``; False if something is already at that name."""
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
        except FileExistsError:
            return False
        try:
            os.fchmod(fd, 0o644)  # whatever the umask: site files are world-readable
            view = memoryview(blob)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        return True

    def keep(self, rel: str) -> bool:
        """List ``rel``, left as it is, if it is a plain file of the site (not a link); False otherwise."""
        target = self.path(rel)
        try:
            ok = stat.S_ISREG(os.lstat(target).st_mode)
        except OSError:
            ok = False
        if ok:
            self.written.add(rel)
        return ok

    def finish(self) -> list[str]:
        """Remove the files of the previous build not written again, then write the new manifest. Returns
        the removed paths (relative)."""
        removed = []
        for rel in sorted(self.previous - self.written):
            try:
                target = self.path(rel)
                if stat.S_ISDIR(os.lstat(target).st_mode):
                    continue  # a folder is never removed: only files the manifest names
                target.unlink()
                removed.append(rel)
            except (OSError, SpecError):
                continue  # gone already, or behind a link: left alone
        self._mark(self.written)
        return removed

    def _mark(self, files: set[str]) -> None:
        """Write the marker listing ``files``."""
        blob = json.dumps({"tool": "convbench", "format": MARKER_FORMAT, "files": sorted(files)}, indent=0)
        write_bytes_atomic(self.root / MARKER, (blob + "\n").encode(), durable=False)


@contextlib.contextmanager
def site_lock(root: str | Path):
    """Hold an exclusive ``flock`` on the folder that holds the site ``root`` (its parent, created if missing)
    while a report builds it: concurrent reports onto one site then run one at a time. Nothing is written for
    the lock (a directory is locked, not a file in it). Where folders cannot be locked (some network
    filesystems) the build goes on unlocked."""
    parent = Path(root).absolute().parent
    parent.mkdir(parents=True, exist_ok=True)
    fd = None
    try:
        import fcntl

        fd = os.open(parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        fcntl.flock(fd, fcntl.LOCK_EX)
    except (ImportError, OSError):
        if fd is not None:
            os.close(fd)
        fd = None
    try:
        yield
    finally:
        if fd is not None:
            os.close(fd)  # releases the lock


def claim(root: Path) -> set[str]:
    """Make ``root`` a site folder this report may write: created if missing, accepted if empty or if it carries
    the marker. Returns the previous build's manifest. SpecError (one line) for any other folder."""
    try:
        st = os.stat(root)
    except FileNotFoundError:
        root.mkdir(parents=True, exist_ok=True)  # another report may have made it meanwhile
        return set()
    if not stat.S_ISDIR(st.st_mode):
        raise SpecError("command line", "--site", f"{root} is not a folder")
    for sub in SUBFOLDERS:  # checked before anything is written: a refused site is left as it was
        if (root / sub).is_symlink():
            raise SpecError(
                str(root / sub),
                "",
                "is a symbolic link: a site holds its own folders, the report does not write through links",
            )
    marker = root / MARKER
    try:
        mst = os.lstat(marker)
    except FileNotFoundError:
        if any(os.scandir(root)):
            raise SpecError(
                "command line",
                "--site",
                f"{root} is a non-empty folder that is not a convbench site "
                f"(no {MARKER}); the report writes only into a new or empty folder or its own site",
            )
        return set()
    if not stat.S_ISREG(mst.st_mode):
        raise SpecError(str(marker), "", "not a regular file: this folder's marker cannot be trusted")
    return _manifest(marker)


def _manifest(marker: Path) -> set[str]:
    """The file list of a marker (an unreadable or damaged one lists nothing: nothing is deleted)."""
    from bench.records.safeio import RECORD_MAX_BYTES, parse_json, read_regular

    try:
        data = parse_json(read_regular(marker, RECORD_MAX_BYTES))
    except (OSError, ValueError):
        return set()
    files = data.get("files") if isinstance(data, dict) and data.get("tool") == "convbench" else None
    if not isinstance(files, list):
        return set()
    return {f for f in files if isinstance(f, str) and f and not Path(f).is_absolute() and ".." not in Path(f).parts}
