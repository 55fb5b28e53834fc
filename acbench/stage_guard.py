"""One run per stage at a time, into folders known to be writable.

:func:`guard_stage` wraps one stage's run: it checks that the stage's results folder and its
checkpoint folder can be written (before any training, not after it), then takes an exclusive lock
beside the checkpoint folder (``<checkpoint folder>.lock``, holding the owner's pid and host). A
second run of the same stage fails at once naming the holder. The lock is an ``flock`` on an open
file, so the kernel releases it when its process dies: a lock left by a killed run is recovered
without anyone's help. Under ``torchrun`` only rank 0 takes the lock (the ranks run the stage together).
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import tempfile
from pathlib import Path
from typing import Iterator

from acbench.errors import FolderNotWritable, StageLocked
from acbench.paths import checkpoint_dir


def ensure_writable(folder: Path, what: str) -> None:
    """Create ``folder`` if needed and prove a file can be written in it; else :class:`FolderNotWritable`."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".write-probe.")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise FolderNotWritable(f"{folder}: the {what} folder is not writable ({exc.strerror})",
                                "make it writable (chmod u+w) or free space, then re-run; nothing was trained") from None


def lock_path(out_dir: Path) -> Path:
    ckpt = checkpoint_dir(out_dir)
    return ckpt.parent / f".{ckpt.name}.lock"


@contextlib.contextmanager
def stage_lock(path: Path, label: str) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` for the block; :class:`StageLocked` names the holder if taken."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fh = open(path, "a+", encoding="utf-8")
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            try:
                holder = json.loads(fh.read() or "{}")
            except ValueError:
                holder = {}
            raise StageLocked(f"{label} is already running (pid {holder.get('pid', '?')} on host "
                              f"{holder.get('host', '?')}, lock {path})",
                              "wait for it to finish, or stop that process; a killed run's lock is released "
                              "automatically") from None
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "stage": label}))
        fh.flush()
        try:
            yield
        finally:
            fh.seek(0)
            fh.truncate()
            fh.flush()
            fcntl.flock(fh, fcntl.LOCK_UN)
    finally:
        fh.close()


def _is_secondary_rank() -> bool:
    return os.environ.get("RANK", "0") != "0"


@contextlib.contextmanager
def guard_stage(out_dir: Path, label: str) -> Iterator[None]:
    """Check the stage's folders are writable, then run the block holding the stage's lock."""
    out_dir = Path(out_dir)
    ensure_writable(out_dir, f"results ({label})")
    ensure_writable(checkpoint_dir(out_dir).parent, f"checkpoint ({label})")
    if _is_secondary_rank():
        yield
        return
    with stage_lock(lock_path(out_dir), label):
        yield
