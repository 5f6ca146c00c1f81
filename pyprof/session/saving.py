"""Writing a profile's reports: atomically, never raising into the user's code, and autosaving off the training thread.

A :class:`ReportWriter` owns the output folder of one profile: :meth:`~ReportWriter.write` writes a result (the final
one with every format asked for; partial ones with the cheap formats only), :meth:`~ReportWriter.autosave` builds and
writes a snapshot on a daemon thread, and :meth:`~ReportWriter.join` waits for a save in flight so it can never
overwrite a later report. :class:`deferred_signals` holds SIGINT and SIGTERM over a short critical section.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

#: The interpreter's switch interval while a background save runs (seconds): see :meth:`ReportWriter.autosave`.
SAVE_SWITCH_INTERVAL_S = 5e-4


class ReportWriter:
    """The reports of one profile in ``output_dir`` (None: nothing is written).

    Args:
        output_dir: the folder (checked writable before the run by ``validate_profile_options``).
        formats: the formats of the final report (``pyprof.report.FORMATS`` names).
    """

    def __init__(self, output_dir: str | os.PathLike | None, formats: Sequence[str]) -> None:
        self.output_dir = Path(output_dir) if output_dir is not None else None
        self.formats = tuple(formats)
        self.final_written = False
        self.saved_once = False
        self._saver: threading.Thread | None = None

    def write(self, result: Any, final: bool = False) -> None:
        """Write ``result``; never raises a write error into the user's code (a warning names the folder, and the
        result stays in memory: ``prof.result()``). The last good report on disk is kept (writes are atomic)."""
        if self.output_dir is None:
            return
        from pyprof.report import write_reports
        from pyprof.report.writers import AUTOSAVE_FORMATS
        try:
            # Autosaves stay cheap (no plots, no trace): the final report writes every format asked for.
            formats = self.formats if final else [f for f in self.formats if f in AUTOSAVE_FORMATS]
            write_reports(result, self.output_dir, formats)
            if final:
                self.final_written = True
        except Exception as e:
            warnings.warn(f"pyprof: could not write the report to {self.output_dir}: {e}; the result is kept in "
                          "memory (prof.result()), and the last report written there, if any, is unchanged",
                          RuntimeWarning, stacklevel=4)

    @property
    def busy(self) -> bool:
        """True while an autosave is in flight."""
        return self._saver is not None and self._saver.is_alive()

    def autosave(self, build: Callable[[], Any]) -> None:
        """Build a partial result with ``build`` (from a snapshot the caller took) and write it on a daemon thread.

        A save still running when the next is due is skipped, so saves never pile up.
        """
        if self.busy:
            return
        self.saved_once = True

        def save() -> None:
            # The save is pure Python and shares the GIL: each time the training thread wants it back it waits up to
            # the interpreter's switch interval (5 ms by default). 0.5 ms while the save runs keeps that wait under
            # the 1 ms a step may be stalled; the previous interval is restored unless someone changed it meanwhile.
            prev = sys.getswitchinterval()
            ours = min(prev, SAVE_SWITCH_INTERVAL_S)
            sys.setswitchinterval(ours)
            try:
                result = build()
                if not self.final_written:  # an autosave never replaces the final report
                    self.write(result)
            except Exception as e:
                warnings.warn(f"pyprof: autosave failed: {e!r}", RuntimeWarning, stacklevel=2)
            finally:
                if sys.getswitchinterval() == ours:
                    sys.setswitchinterval(prev)

        self._saver = threading.Thread(target=save, name="pyprof-autosave", daemon=True)
        self._saver.start()

    def join(self, timeout_s: float = 30.0) -> None:
        """Wait for an autosave in flight (bounded: a save of the bounded window takes well under a second; 30 s
        covers a slow network filesystem)."""
        saver = self._saver
        if saver is not None and saver.is_alive() and saver is not threading.current_thread():
            saver.join(timeout_s)


class deferred_signals:
    """Hold SIGINT and SIGTERM for the duration of a short critical section (writing the report), then deliver them
    to whatever handler is installed; a no-op off the main thread (where no handler can be set)."""

    _SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __enter__(self) -> None:
        self.pending: list[int] = []
        self.saved: dict[int, Any] = {}
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in self._SIGNALS:
            self.saved[sig] = signal.getsignal(sig)
            signal.signal(sig, lambda signum, frame: self.pending.append(signum))

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self.saved.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        for sig in dict.fromkeys(self.pending):
            signal.raise_signal(sig)


class SigtermGuard:
    """Handle SIGTERM like SIGINT: ``on_signal(reason)`` writes a partial report, then the signal has its normal
    outcome: the handler installed before is called, ``SIG_IGN`` ignores it, and with the default action the process
    dies by SIGTERM, as it would without pyprof. Installed only from the main thread, where Python runs handlers
    (elsewhere the report comes from the autosaves)."""

    def __init__(self, on_signal: Callable[[str], None]) -> None:
        self._on_signal = on_signal
        self._prev: Any = None
        self._installed = False

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        self._prev = signal.getsignal(signal.SIGTERM)
        signal.signal(signal.SIGTERM, self._handle)
        self._installed = True

    def restore(self) -> None:
        if not self._installed:
            return
        self._installed = False
        # Leave a handler the user installed during the run in place; put back the one from before ours.
        if signal.getsignal(signal.SIGTERM) == self._handle:
            signal.signal(signal.SIGTERM, self._prev if self._prev is not None else signal.SIG_DFL)

    def _handle(self, signum: int, frame: Any) -> None:
        prev = self._prev
        name = signal.Signals(signum).name
        try:
            self._on_signal(f"stopped by {name}")
        except BaseException as e:
            print(f"pyprof: writing the report on {name} failed: {e!r}", file=sys.stderr)
        if callable(prev):
            prev(signum, frame)  # the user's handler, chained (it may raise SystemExit: the with-block ends then)
            return
        if prev == signal.SIG_IGN:
            return
        # The default action (or a handler not set from Python): die by the signal, as without pyprof.
        sys.stdout.flush()
        sys.stderr.flush()
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
