"""Turning any exception into the one line the command line prints (file or stage, what, fix).

:func:`describe` returns that line and whether the failure is internal (a bug, exit code 3) rather
than a user-fixable condition (exit code 2). Engine errors (:class:`~acbench.errors.AcbenchError`)
carry their own message and hint; the common library errors (file permissions, a full disk, a
damaged zip or safetensors file) are explained here, so no stage needs to catch them itself.
"""
from __future__ import annotations

import errno
import zipfile

from acbench.errors import AcbenchError


class StageFailed(AcbenchError):
    """A stage raised: ``where`` (``replication/stage (profile p)``) and the original exception."""

    def __init__(self, where: str, cause: BaseException):
        super().__init__(f"{where}: {describe(cause)[0]}")
        self.where, self.cause = where, cause


def _one_line(text: str, limit: int = 600) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _os_error(exc: OSError) -> str | None:
    name = exc.filename or ""
    if isinstance(exc, PermissionError) or exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"{name}: not writable ({exc.strerror}); make the folder writable or run from a writable checkout"
    if exc.errno == errno.ENOSPC:
        return f"{name}: no space left on the device; free disk space and re-run (the run resumes)"
    if isinstance(exc, FileNotFoundError):
        return f"{name}: not found ({exc.strerror}); run the stage that produces it first"
    return None


def describe(exc: BaseException) -> tuple[str, bool]:
    """(one line for the user, internal?) for ``exc``."""
    from acbench.config import ConfigError

    if isinstance(exc, StageFailed):
        return exc.message, describe(exc.cause)[1]
    if isinstance(exc, ConfigError):  # a list of fields, one per line, is easier to read than one line
        return f"config error: {exc}", False
    if isinstance(exc, AcbenchError):
        return _one_line(str(exc)), False
    if isinstance(exc, OSError) and (line := _os_error(exc)):
        return _one_line(line), False
    if isinstance(exc, zipfile.BadZipFile):
        return _one_line(f"an archive is not a valid zip file ({exc}); restore the original archive and its "
                         f"declared SHA-256 (`acbench data verify` names the file)"), False
    if type(exc).__name__ == "SafetensorError":
        return _one_line(f"a safetensors file is damaged ({exc}); delete it and re-run the stage that wrote it"), False
    return _one_line(f"unexpected {type(exc).__name__}: {exc}"), True
