"""Run ``costlens`` commands each in a process of its own, without paying torch's import each time.

tests/test_hostile.py runs dozens of commands that end the process (sys.exit from user
code, Ctrl-C, killed writers), so each must run in a separate process, as a user's
would. Starting ``python -m costlens`` costs a few seconds of CPU, mostly ``import torch``.
This server imports torch and costlens once, then forks a child per request: the child
has its own working directory, environment, standard streams and exit status, runs
``costlens/__main__.py`` exactly as ``python -m costlens`` does, and exits through
``os._exit`` with the code the interpreter would give. The server is started with
``python -P``, so, like the installed ``costlens`` script, the working directory is not on
``sys.path`` unless costlens puts it there.

Protocol (one JSON object per line): the server says ``{"ready": [modules preloaded]}``;
each request ``{"args", "cwd", "stdout", "stderr", "stdin", "env", "unset", "timeout"}``
(``stdout``: a path, ``"closed-pipe"`` or ``"closed"``)
is answered ``{"pid": N}`` at once, then ``{"status": CODE}`` (negative: killed by that
signal; "timeout": killed after ``timeout`` seconds).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import sys
import time
import traceback
from typing import Any


def _reply(channel: int, message: dict[str, Any]) -> None:
    os.write(channel, (json.dumps(message) + "\n").encode())


def _exit_code(done: SystemExit) -> int:
    """The status the interpreter gives for ``sys.exit(code)``."""
    if done.code is None:
        return 0
    if isinstance(done.code, int):
        return done.code & 0xFF
    print(done.code, file=sys.stderr)
    return 1


def _redirect(target: int, path: str, flags: int) -> None:
    descriptor = os.open(path, flags, 0o644)
    os.dup2(descriptor, target)
    os.close(descriptor)


def _child(request: dict[str, Any], channel: int) -> None:
    code = 1
    try:
        os.close(channel)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.chdir(request["cwd"])
        for key in request.get("unset", []):
            os.environ.pop(key, None)
        os.environ.update(request.get("env", {}))
        _redirect(0, request.get("stdin") or os.devnull, os.O_RDONLY)
        _redirect(2, request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        _standard_output(request["stdout"])
        sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False))  # nothing the server had buffered
        sys.argv = ["costlens", *request["args"]]
        import runpy

        runpy.run_module("costlens", run_name="__main__")
        code = 0
    except SystemExit as done:
        code = _exit_code(done)
    except BaseException:  # what the interpreter does with an uncaught exception
        traceback.print_exc()
        code = 1
    finally:
        os._exit(_flushed_at_exit(code))


def _standard_output(where: str) -> None:
    """fd 1 as a file, a pipe whose reader has closed it, or closed (the interpreter then sets
    sys.stdout to None, as it does when started with fd 1 closed)."""
    if where == "closed-pipe":
        reader, writer = os.pipe()
        os.close(reader)
        os.dup2(writer, 1)
        os.close(writer)
    elif where == "closed":
        os.close(1)
        sys.stdout = None  # type: ignore[assignment]
    else:
        _redirect(1, where, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)


def _flushed_at_exit(code: int) -> int:
    """What the interpreter does at exit: flush stdout and stderr; when stdout cannot be flushed,
    print 'Exception ignored' and exit 120 instead of 0."""
    for stream in (sys.stdout, sys.stderr):
        if stream is None:
            continue
        try:
            stream.flush()
        except (OSError, ValueError) as error:
            if stream is sys.stdout:
                with contextlib.suppress(OSError, ValueError):
                    print(f"Exception ignored in: {stream!r}\n{type(error).__name__}: {error}", file=sys.stderr, flush=True)
                code = code or 120
    return code


def _wait(pid: int, timeout: float) -> int | str:
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return "timeout"
        time.sleep(0.005)


def main() -> None:
    import torch  # noqa: F401  the expensive imports, once for every child

    import costlens.api  # noqa: F401
    import costlens.cli  # noqa: F401

    channel = os.dup(1)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # nothing a child inherits can reach the channel
    _reply(channel, {"ready": sorted(m for m in ("pandas", "plotly", "fvcore") if m in sys.modules)})
    for line in sys.stdin:
        request = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _child(request, channel)
        _reply(channel, {"pid": pid})
        _reply(channel, {"status": _wait(pid, float(request.get("timeout", 60)))})


if __name__ == "__main__":
    main()
