"""Errors the command line turns into one line and exit code 2."""

from __future__ import annotations


class BenchError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


class SpecError(BenchError):
    """Bad input in a file: names the file and the field."""

    def __init__(self, path: str, field: str, message: str):
        self.path, self.field, self.message = str(path), field, message
        super().__init__(f"{self.path}: {field}: {message}" if field else f"{self.path}: {message}")


class DataMissing(BenchError):
    """A data set is not under its root and downloading is not allowed."""


class RunFailed(Exception):
    """A run could not finish (non-finite loss, out of memory, …); recorded as failed, the suite goes on."""
