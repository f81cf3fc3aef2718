"""Files in and out: reading what the user gives with a bound, and writing reports and profiles
whole or not at all, never over what is not a file.

costlens often runs as root in a container, where ``-o /dev/null`` replaced by a
regular file breaks the system. So what happens to an output depends on what the
target is (``os.lstat``, then ``os.stat`` through links), decided before anything is written:

* does not exist: created atomically (a temporary beside it, fsync, rename); missing
  parent directories are made.
* a regular file: replaced atomically; its permission bits, and as root its owner, are
  kept. A hard link to it stops being one, as with any atomic replace.
* a symlink to a regular file: the file it resolves to is replaced atomically; the link stays.
* a path through ``/proc/PID/fd`` or ``/dev/fd`` (``/dev/stdout``, ``/dev/stderr``, or a
  link to them): written into, appended, never replaced nor truncated: it names a
  descriptor the caller opened (a file redirected with ``>``, a pipe, a terminal).
* a fifo: written into when a reader has it open; without one, refused at once with a
  one-line error instead of blocking forever.
* a terminal, ``/dev/null``, ``/dev/zero`` or ``/dev/full``: written into; ``/dev/full``
  fails with "No space left on device". Other character devices (memory, watchdog,
  kmsg ... where opening or writing acts on the system), block devices and sockets are
  refused, and so are files under ``/proc`` and ``/sys`` other than descriptors.
* a directory, or a symlink to nothing: refused, naming the path.

``write_output`` takes ``None`` or ``"-"`` as standard output. ``append_text`` appends
(``GITHUB_STEP_SUMMARY``) under the same rules, creating a missing regular file.

Temporaries are named ``.NAME.costlens-PID-N.tmp`` beside the target, and the writer
holds an exclusive ``flock`` on its temporary until the rename. A run killed mid-write
(SIGKILL included) leaves one behind; the next write into that directory removes every
temporary whose lock nobody holds and whose process is gone, or which is older than
``STALE_AFTER_S`` (a PID can be reused, in a new container often is).

``read_text`` is the one way costlens reads a file it is given (a saved profile, a budget,
a device description): a regular file of bounded size, checked before it is opened (a
fifo would block, ``/dev/zero`` never ends) and again once opened, decoded as UTF-8.

``OutputBatch`` makes a command's outputs all or nothing: every text is rendered
before anything is written; then every temporary is written and synced (a full disk
or a refused target stops here, with nothing changed); then descriptors, pipes and
standard output are written; only then are the temporaries renamed into place. A
failure after that point removes the files the batch created. Files it replaced
stay replaced: their new content is complete.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import itertools
import os
import re
import stat
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from costlens.errors import OutputError

# A temporary older than this is stale even when its PID is alive: PIDs are reused.
STALE_AFTER_S = 10.0
_TEMPORARY = re.compile(r"\..*\.costlens-(?P<pid>\d+)-\d+\.tmp", re.DOTALL)
_NAME_BYTES = 160  # of the target's name kept in the temporary's, which must stay under 255 bytes
_sequence = itertools.count()
_DESCRIPTOR_DIRECTORY = re.compile(r"/proc/[^/]+(/task/[^/]+)?/fd")
_KERNEL_TREES = ("/proc", "/sys")
# Linux character devices safe to write into: /dev/null, /dev/zero, /dev/full (major 1),
# terminals (4, 5) and pseudo-terminals (136-143). Other majors hold /dev/mem, /dev/port,
# /dev/kmsg, watchdogs, where a write or even an open acts on the machine.
_HARMLESS_MEMORY_DEVICES = {3, 5, 7}
_TERMINAL_MAJORS = {4, *range(136, 144)}
_TERMINAL_DEVICES = {(5, 0), (5, 1)}  # /dev/tty, /dev/console; not 5:2, /dev/ptmx, which makes a new terminal
_STDOUT = "<stdout>"


def _error(path: object, error: OSError) -> OutputError:
    return OutputError(f"cannot write {path}: {error.strerror or error}")


@dataclass
class _Target:
    """Where one output goes, and how: see the module docstring."""

    named: str | Path  # as the caller gave it, for messages and the return value
    how: str  # "replace" (atomic), "into" (open and write), or "stdout"
    real: Path = Path()  # for "replace": the regular file, links resolved
    info: os.stat_result | None = None  # what was inspected, to notice a swap before writing
    append: bool = False


# -- what a target is -------------------------------------------------------------------------

def _reaches_descriptor(path: str | Path) -> bool:
    """Whether following ``path``'s links passes through a /proc/PID/fd directory."""
    current = os.path.abspath(path)
    for _ in range(40):  # the kernel's own limit on links followed
        head, tail = os.path.split(current)
        head = os.path.realpath(head)
        if _DESCRIPTOR_DIRECTORY.fullmatch(head):
            return True
        current = os.path.join(head, tail)
        if not os.path.islink(current):
            return False
        current = os.path.join(head, os.readlink(current))
    return False


def _in_kernel_tree(real: str) -> bool:
    return any(real == tree or real.startswith(tree + "/") for tree in _KERNEL_TREES)


def _harmless_device(info: os.stat_result) -> bool:
    if info.st_rdev == os.stat(os.devnull).st_rdev:
        return True
    if not sys.platform.startswith("linux"):
        return False
    major, minor = os.major(info.st_rdev), os.minor(info.st_rdev)
    return (major == 1 and minor in _HARMLESS_MEMORY_DEVICES) or major in _TERMINAL_MAJORS or (major, minor) in _TERMINAL_DEVICES


def file_kind(mode: int) -> str:
    """What a file that is not a regular one is, in words: 'a directory', 'a fifo' ..."""
    kinds = ((stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
             (stat.S_ISFIFO, "a fifo"), (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symlink"))
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def _inspect(named: str | Path) -> _Target:
    """Decide how ``named`` is written, or refuse it, before anything is written."""
    try:
        link = os.lstat(named)
    except FileNotFoundError:
        real = os.path.realpath(named)
        if _in_kernel_tree(real):
            raise OutputError(f"cannot write {named}: costlens does not create files under {real.split('/')[1]}") from None
        return _Target(named, "replace", Path(real))
    except OSError as error:
        raise _error(named, error) from error
    except ValueError:  # a NUL character, or a surrogate no file name can hold
        raise OutputError(f"cannot write {named}: not a valid file name") from None
    try:
        info = os.stat(named)
    except FileNotFoundError:
        raise OutputError(f"cannot write {named}: a symlink to a missing file ({os.readlink(named)})") from None
    except OSError as error:
        raise _error(named, error) from error
    mode = info.st_mode
    if stat.S_ISLNK(link.st_mode) and _reaches_descriptor(named) and (stat.S_ISREG(mode) or stat.S_ISFIFO(mode)):
        return _Target(named, "into", info=info, append=stat.S_ISREG(mode))
    if (stat.S_ISCHR(mode) and _harmless_device(info)) or stat.S_ISFIFO(mode):
        return _Target(named, "into", info=info)
    real = os.path.realpath(named)
    if stat.S_ISREG(mode) and not _in_kernel_tree(real):
        return _Target(named, "replace", Path(real), info)
    what = file_kind(mode) if not stat.S_ISREG(mode) else f"a kernel file under {real.split('/')[1]}"
    if stat.S_ISCHR(mode):
        what += f" ({os.major(info.st_rdev)}:{os.minor(info.st_rdev)}); costlens writes only into terminals, pipes and /dev/null"
    raise OutputError(f"cannot write {named}: it is {what}")


# -- temporaries ------------------------------------------------------------------------------

def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's live process
    return True


def _stale(path: str, pid: int) -> bool:
    """Nobody holds the temporary's lock, and its writer is gone or it is old."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False  # not ours to judge (another user's, or already gone)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False  # a live writer holds it
    else:
        return not _alive(pid) or time.time() - os.fstat(descriptor).st_mtime > STALE_AFTER_S
    finally:
        os.close(descriptor)  # releases the lock taken just to test it


def clean_stale_temporaries(directory: str | Path) -> list[Path]:
    """Remove the temporaries of interrupted costlens writes in ``directory``; the paths removed."""
    removed: list[Path] = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    for entry in entries:
        match = _TEMPORARY.fullmatch(entry.name)
        if match and entry.is_file(follow_symlinks=False) and _stale(entry.path, int(match["pid"])):
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed


def _temporary_name(target: Path, number: int) -> str:
    name = os.fsdecode(os.fsencode(target.name)[:_NAME_BYTES])
    return f".{name}.costlens-{os.getpid()}-{number}.tmp"


def _make_parents(directory: Path) -> list[Path]:
    """Create ``directory`` and its missing parents; those created, deepest first."""
    missing = []
    probe = directory
    while not os.path.lexists(probe) and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    directory.mkdir(parents=True, exist_ok=True)
    return missing


@dataclass
class _Temporary:
    """A temporary, written and synced, locked until it is renamed or discarded."""

    path: Path
    descriptor: int

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)
        self.close()

    def close(self) -> None:
        if self.descriptor >= 0:
            os.close(self.descriptor)
            self.descriptor = -1


def _open_temporary(real: Path) -> _Temporary:
    for _ in range(100):
        path = real.parent / _temporary_name(real, next(_sequence))
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
        except FileExistsError:
            continue  # left by an earlier process with this PID, still fresh
        temporary = _Temporary(path, descriptor)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)  # held until the rename: marks it as in use
        except BaseException:
            temporary.discard()
            raise
        return temporary
    raise OutputError(f"cannot write {real}: no free temporary name beside it")


def _write_all(descriptor: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(descriptor, view)
        if written == 0:
            raise OSError(errno.EIO, "the write made no progress")
        view = view[written:]


def _prepare(target: _Target, data: bytes) -> _Temporary:
    """Phase one of a replace: the complete text in a synced temporary beside the target."""
    clean_stale_temporaries(target.real.parent)
    temporary = _open_temporary(target.real)
    try:
        if target.info is not None:  # keep the replaced file's mode, and as root its owner
            os.fchmod(temporary.descriptor, stat.S_IMODE(target.info.st_mode))
            if os.geteuid() == 0:
                os.fchown(temporary.descriptor, target.info.st_uid, target.info.st_gid)
        _write_all(temporary.descriptor, data)
        os.fsync(temporary.descriptor)
    except BaseException:
        temporary.discard()
        raise
    return temporary


def _rename(target: _Target, temporary: _Temporary) -> None:
    """Phase two of a replace; refuses if the target became something else meanwhile."""
    try:
        now = os.lstat(target.real)
    except FileNotFoundError:
        now = None
    if now is not None and not stat.S_ISREG(now.st_mode):
        raise OutputError(f"cannot write {target.named}: it became {file_kind(now.st_mode)} while costlens wrote")
    os.replace(temporary.path, target.real)
    temporary.close()
    try:  # make the rename itself durable; some filesystems cannot sync a directory
        directory = os.open(target.real.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    except OSError:
        pass


# -- writing into what is not replaced --------------------------------------------------------

def _check_opened(target: _Target, opened: os.stat_result) -> None:
    """What was opened is what was inspected (a swap in between is refused)."""
    if target.info is None:  # created by this open (append_text)
        same = stat.S_ISREG(opened.st_mode)
    elif stat.S_ISCHR(target.info.st_mode):  # /dev/tty opens the controlling terminal, another node
        same = stat.S_ISCHR(opened.st_mode) and _harmless_device(opened)
    else:
        same = (opened.st_dev, opened.st_ino) == (target.info.st_dev, target.info.st_ino)
    if not same:
        raise OutputError(f"cannot write {target.named}: it changed while costlens opened it ({file_kind(opened.st_mode)} now)")


def _write_into(target: _Target, data: bytes, create: bool = False) -> None:
    flags = os.O_WRONLY | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC | (os.O_APPEND if target.append else 0)
    try:
        descriptor = os.open(target.named, flags | (os.O_CREAT if create else 0), 0o666)
    except OSError as error:
        if error.errno == errno.ENXIO and target.info is not None and stat.S_ISFIFO(target.info.st_mode):
            raise OutputError(f"cannot write {target.named}: a fifo with no reader (start the reader first)") from None
        raise _error(target.named, error) from error
    try:
        _check_opened(target, os.fstat(descriptor))
        os.set_blocking(descriptor, True)  # a pipe's reader may be slower than we are
        _write_all(descriptor, data)
    except OSError as error:
        raise _error(target.named, error) from error
    finally:
        os.close(descriptor)


def _silence_stdout() -> None:
    """After EPIPE: point fd 1 at /dev/null, so the interpreter's last flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def _write_stdout(data: bytes) -> None:
    stream = sys.stdout
    if stream is None:
        raise OutputError("cannot write to standard output: it is closed")
    try:
        stream.flush()
        buffer = getattr(stream, "buffer", None)
        if buffer is None:
            stream.write(data.decode("utf-8"))
            stream.flush()
        else:
            buffer.write(data)
            buffer.flush()
    except BrokenPipeError:
        _silence_stdout()
        raise OutputError("cannot write to standard output: the reader closed the pipe") from None
    except OSError as error:
        raise OutputError(f"cannot write to standard output: {error.strerror or error}") from error
    except ValueError:  # I/O operation on a closed file
        raise OutputError("cannot write to standard output: it is closed") from None


# -- the public functions ---------------------------------------------------------------------

def _encode(named: object, text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as error:
        character = text[error.start]
        raise OutputError(
            f"cannot write {named}: the text holds U+{ord(character):04X} at position {error.start:,}, which UTF-8 cannot encode"
        ) from None


def _is_stdout(path: str | Path | None) -> bool:
    return path is None or (isinstance(path, str) and path == "-")  # a Path("-") is a file named '-'


class OutputBatch:
    """The outputs of one command, written all together once every one is rendered, or not at all.

    ``with OutputBatch() as batch: batch.add(path, render())`` writes when the block ends
    without an exception; an exception inside it (a render that fails) writes nothing.
    ``add`` takes ``None`` or ``"-"`` for standard output and refuses a destination named
    twice. After the block, ``batch.written`` holds each output's path (None for stdout).
    """

    def __init__(self) -> None:
        self._outputs: list[tuple[str | Path | None, bytes]] = []
        self._destinations: dict[str, str | Path | None] = {}
        self._committed = False
        self.written: list[Path | None] = []

    def add(self, path: str | Path | None, text: str) -> None:
        """Queue ``text`` for ``path``; nothing is written until the batch commits."""
        shown = "standard output" if _is_stdout(path) else str(path)
        try:
            key = _STDOUT if path is None or _is_stdout(path) else os.path.realpath(path)
        except ValueError:
            raise OutputError(f"cannot write {path}: not a valid file name") from None
        if key in self._destinations:
            first = self._destinations[key]
            also = "" if first == path else f" (also as {'-' if first is None else first})"
            raise OutputError(f"{shown} is named twice as an output of one command{also}")
        self._destinations[key] = path
        self._outputs.append((path, _encode(shown, text)))

    def __enter__(self) -> OutputBatch:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        if kind is None:
            self.commit()

    def commit(self) -> list[Path | None]:
        """Write every queued output (in the order the module docstring gives); each one's path, None for stdout."""
        if self._committed:
            raise RuntimeError("an OutputBatch commits once")
        self._committed = True
        targets = [None if path is None or _is_stdout(path) else _inspect(path) for path, _ in self._outputs]
        self.written = _commit(list(zip(targets, (data for _, data in self._outputs))))
        return self.written


def _commit(outputs: list[tuple[_Target | None, bytes]]) -> list[Path | None]:
    created_directories: list[Path] = []
    temporaries: dict[int, _Temporary] = {}
    created_files: list[Path] = []
    current: object = "output"  # the output being written, for the message of an OSError
    try:
        for index, (target, data) in enumerate(outputs):  # phase one: every temporary complete on disk
            if target is not None and target.how == "replace":
                current = target.named
                created_directories += _make_parents(target.real.parent)
                temporaries[index] = _prepare(target, data)
        for target, data in outputs:  # phase two: what cannot be taken back once written
            if target is None:
                _write_stdout(data)
            elif target.how == "into":
                current = target.named
                _write_into(target, data)
        for index, temporary in temporaries.items():  # phase three: the renames
            target = outputs[index][0]
            assert target is not None
            current = target.named
            _rename(target, temporary)
            if target.info is None:
                created_files.append(target.real)
    except BaseException as failure:
        _undo(temporaries.values(), created_files, created_directories)
        if isinstance(failure, OSError):
            raise _error(current, failure) from failure
        raise
    return [None if target is None else Path(target.named) for target, _ in outputs]


def _undo(temporaries: Iterable[_Temporary], created_files: list[Path], created_directories: list[Path]) -> None:
    for temporary in temporaries:
        if temporary.descriptor >= 0:
            temporary.discard()
    for path in created_files:
        path.unlink(missing_ok=True)
    for directory in created_directories:  # deepest first; a directory something else filled stays
        with contextlib.suppress(OSError):
            directory.rmdir()


def write_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path``: a regular file is replaced whole, anything else as the module docstring says.

    ``path`` is always a file name here, ``"-"`` included; ``write_output`` maps ``"-"`` to stdout.
    """
    return _commit([(_inspect(path), _encode(path, text))])[0] or Path(path)


def write_output(path: str | Path | None, text: str) -> Path | None:
    """Write ``text`` to standard output when ``path`` is None or ``"-"``, else as ``write_atomic``; the path or None."""
    if path is None or _is_stdout(path):
        _write_stdout(_encode("standard output", text))
        return None
    return write_atomic(path, text)


def append_text(path: str | Path, text: str) -> Path:
    """Append ``text`` to ``path`` (a step summary, a log): a regular file, created when missing, or
    a fifo, terminal or /dev/null as for ``write_atomic``; a directory or a device is refused."""
    data = _encode(path, text)
    target = _inspect(path)
    if target.how == "replace":  # a regular file, or none yet: append, never replace
        created = _make_parents(target.real.parent)
        try:
            _write_into(_Target(path, "into", info=target.info, append=True), data, create=True)
        except BaseException:
            if target.info is None:
                target.real.unlink(missing_ok=True)
            _undo([], [], created)
            raise
    else:
        _write_into(target, data)
    return Path(path)


def report_stem(model: str) -> str:
    """A file name for a model's reports: 'mypkg.models:build' -> 'mypkg.models-build'."""
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in model).strip("-.") or "model"


class Unreadable(Exception):
    """Why ``read_text`` could not read a file, in words without the path (each caller words its
    own error around it); ``missing`` when there is no such file."""

    def __init__(self, reason: str, missing: bool = False) -> None:
        super().__init__(reason)
        self.missing = missing


def read_text(path: str | Path, limit: int, what: str, hint: str) -> str:
    """The UTF-8 text of the regular file ``path``, at most ``limit`` bytes; an ``Unreadable`` for
    anything else. ``what`` names the file in messages ('profile'), ``hint`` says what it should be
    ('a saved profile is a JSON file')."""

    def refuse_unless_regular(info: os.stat_result) -> None:
        if not stat.S_ISREG(info.st_mode):
            raise Unreadable(f"not a regular file ({file_kind(info.st_mode)}); {hint}")
        if info.st_size > limit:
            raise Unreadable(f"{info.st_size:,} bytes, more than any {what} ({limit:,} bytes at most)")

    try:
        refuse_unless_regular(os.stat(path))  # before opening: a fifo blocks, opening some devices acts on them
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
        try:
            refuse_unless_regular(os.fstat(descriptor))  # what was opened, in case it changed
            data = _read_bounded(descriptor, limit)
        finally:
            os.close(descriptor)
    except FileNotFoundError as error:
        raise Unreadable(f"cannot read {what} ({error.strerror or error})", missing=True) from None
    except OSError as error:
        raise Unreadable(f"cannot read {what} ({error.strerror or error})") from None
    except ValueError:  # a NUL character, or a surrogate no file name can hold
        raise Unreadable(f"cannot read {what} (not a valid file name)") from None
    if len(data) > limit:
        raise Unreadable(f"grew past {limit:,} bytes while being read")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise Unreadable(f"not UTF-8 text (byte 0x{data[error.start]:02x} at offset {error.start:,})") from None


def _read_bounded(descriptor: int, limit: int) -> bytes:
    """At most ``limit + 1`` bytes from ``descriptor``: one more tells a file that grew past it."""
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = os.read(descriptor, min(1 << 24, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)
