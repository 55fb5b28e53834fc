"""The engine's base error: a message naming the file or stage, and a hint saying how to fix it.

Every failure a user can meet at run time is an :class:`AcbenchError` (or is wrapped into one by
the command line), so ``acbench`` prints one line instead of a traceback and exits with
:data:`EXIT_ERROR`, distinct from :data:`EXIT_CHECK_FAILED` (a check that ran and found a
difference). Subclasses keep the layer's name (``CheckpointError``, ``TrainingDiverged``, ...).
"""
from __future__ import annotations

EXIT_OK = 0
EXIT_CHECK_FAILED = 1     # `acbench check`: a result left its tolerance or the reference
EXIT_ERROR = 2            # config, data, results, checkpoint or any other run-time error
EXIT_INTERRUPTED = 130    # Ctrl-C (128 + SIGINT), as shells report it


class AcbenchError(Exception):
    """A failure with a message naming what failed (file, stage, field) and a ``hint`` saying what to do."""

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.message, self.hint = message, hint

    def __str__(self) -> str:
        return f"{self.message}; {self.hint}" if self.hint else self.message


class StageInputMissing(AcbenchError, FileNotFoundError):
    """An upstream stage's output that this stage reads is absent (run that stage first)."""


class FolderNotWritable(AcbenchError, PermissionError):
    """A results or checkpoint folder cannot be written."""


class StageLocked(AcbenchError):
    """Another process is running the same stage into the same folder."""
