"""torch's profiler (``torch.autograd.profiler.profile``) started and stopped quietly.

Kineto, the profiler's backend, writes lines such as ``USDT:... profiler_start`` straight
to file descriptor 2 when a trace starts and stops, whatever ``KINETO_LOG_LEVEL`` says;
costlens' stderr carries one-line errors and progress, so those writes go to /dev/null.
Only the start and the stop are silenced: the code profiled in between (the user's
forward) writes to stderr as usual.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def _quiet_descriptor() -> Iterator[None]:
    """File descriptor 2 pointed at /dev/null inside, restored after (a no-op where it cannot be)."""
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@contextlib.contextmanager
def profiled(**options: Any) -> Iterator[Any]:
    """``torch.autograd.profiler.profile(**options)`` around the body, its start and stop kept off stderr."""
    from torch.autograd.profiler import profile

    recorder = profile(**options)
    with _quiet_descriptor():
        recorder.__enter__()
    try:
        yield recorder
    finally:
        with _quiet_descriptor():
            recorder.__exit__(None, None, None)
