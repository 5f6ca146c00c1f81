"""Atomic file writes (a reader sees the old file or the new one, never half of one) and the output-folder check
every writer and command runs before work starts."""

from __future__ import annotations

import os
import re
import secrets
import time
from pathlib import Path

__all__ = ["STALE_TEMP_AGE_S", "atomic_write_text", "check_output_dir"]

#: A temp file of the same target older than this, whose writer cannot be identified as alive, is stale. An hour is
#: far longer than any single report write (a large report serializes in seconds), so a live write is never removed.
STALE_TEMP_AGE_S = 3600.0


def _temp_name(target: Path) -> Path:
    # The writer's pid is in the name so that a later write can tell a crashed writer's leftover from a live one.
    return target.parent / f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists but is not ours, or unknown: keep its file
    return True


def _clean_stale_temps(target: Path) -> int:
    """Remove temp files that interrupted writes of ``target`` left behind (``kill -9``, a crash, a full disk).

    Only temps of this target are touched: ``.<name>.<pid>.<hex>.tmp`` whose pid is not running, or (for the
    ``.<name>.<8 random>.tmp`` names of earlier pyprof releases, and pids that might be reused) older than
    :data:`STALE_TEMP_AGE_S`. Returns how many were removed; never raises.
    """
    removed = 0
    pattern = re.compile(r"\." + re.escape(target.name) + r"\.(?:(\d+)\.[0-9a-f]+|[a-z0-9_]{8})\.tmp\Z")
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return 0
    now = time.time()
    for e in entries:
        m = pattern.match(e.name)
        if m is None:
            continue
        try:
            pid = int(m.group(1)) if m.group(1) else None
            own_or_alive = pid is not None and (pid == os.getpid() or _pid_alive(pid))
            old = now - e.stat(follow_symlinks=False).st_mtime > STALE_TEMP_AGE_S
            if (pid is not None and not own_or_alive) or old:
                os.unlink(e.path)
                removed += 1
        except OSError:
            continue
    return removed


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file in the same folder, fsync, then rename over it.

    Temp files that earlier interrupted writes of the same ``path`` left behind are removed first. The file is
    created with mode 0o666 filtered by the process umask (as ``open()`` does), so a umask of 022 gives 0o644.

    Returns:
        The path written.

    Raises:
        OSError: the folder cannot be created or written; ``path`` keeps its previous content.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _clean_stale_temps(path)
    tmp = _temp_name(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, unlike mkstemp's 0o600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def check_output_dir(path: str | os.PathLike, *, option: str = "--out") -> Path:
    """Check that ``path`` can hold pyprof's output, before any work starts; create it (and parents) if missing.

    A probe file is created and removed, so a read-only filesystem, a folder without write permission (chmod 555)
    and a path that is an existing file are all caught here, not after the run.

    Args:
        path: the output folder.
        option: how the caller names it in the message (``--out``, ``output_dir``).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        pyprof.errors.InvalidInputError: the folder cannot be created or written; the message names ``option``,
            the path, the cause and the fix.
    """
    from pyprof.errors import InvalidInputError

    p = Path(path)
    fix = f"pass {option} a folder you can write to"
    if p.exists() and not p.is_dir():
        raise InvalidInputError(f"{option} {str(p)!r} is an existing file, not a folder: {fix}")
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InvalidInputError(f"{option} {str(p)!r} cannot be created ({e.strerror or e}): {fix}") from None
    probe = p / f".pyprof-write-check-{os.getpid()}"
    try:
        with open(probe, "w", encoding="utf-8") as f:
            f.write("ok")
    except OSError as e:
        raise InvalidInputError(f"{option} {str(p)!r} is not writable ({e.strerror or e}): {fix}") from None
    finally:
        try:
            probe.unlink()
        except OSError:
            pass
    return p


