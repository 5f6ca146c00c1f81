"""Exceptions pyprof raises for bad input. Each message says what is wrong and how to fix it."""


class PyprofError(Exception):
    """Base class for pyprof's own errors."""


class InvalidInputError(PyprofError, ValueError):
    """A number or argument is out of range (negative count, utilization outside (0, 1], NaN, ...)."""


class UnknownHardwareError(PyprofError, KeyError):
    """A hardware name is not in the peak database; the message lists close matches."""

    def __str__(self) -> str:  # KeyError quotes its argument; we want the plain sentence.
        return str(self.args[0]) if self.args else ""


class ReportError(PyprofError, ValueError):
    """A report file is missing, corrupt, or of an unreadable schema version."""


class ProfilerStateError(PyprofError, RuntimeError):
    """The profiler was used out of order (step() outside the context, nested profiles)."""


class NativeExtensionError(PyprofError, ImportError):
    """pyprof._C could not be loaded; the message names what is missing and how to fix it."""
