"""Output files: whole or not at all, never replacing what is not a regular file, no temporaries left behind."""

from __future__ import annotations

import fcntl
import os
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from costlens import files
from costlens.errors import OutputError
from costlens.files import OutputBatch, append_text, clean_stale_temporaries, write_atomic, write_output

REPO = Path(__file__).resolve().parents[1]


class Interrupted(Exception):
    pass


def _temporaries(directory: Path) -> list[Path]:
    return sorted(directory.glob(".*.costlens-*.tmp"))


def _within(seconds: float, call: Callable[[], object]) -> object:
    """Run ``call`` in a thread; fail, instead of hanging the suite, if it blocks."""
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(call())
        except Exception as error:  # the caller asserts on it
            outcome.append(error)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    assert outcome, f"blocked for more than {seconds} s"
    return outcome[0]


# -- regular files ----------------------------------------------------------------------------

def test_interrupted_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "report.html"
    target.write_text("old page")

    def explode(src: str, dst: str) -> None:
        raise Interrupted

    monkeypatch.setattr(files.os, "replace", explode)
    with pytest.raises(Interrupted):
        files.write_atomic(target, "new page " * 1000)
    assert target.read_text() == "old page"
    assert list(tmp_path.iterdir()) == [target]


def test_write_and_unwritable(tmp_path: Path) -> None:
    assert files.write_atomic(tmp_path / "a" / "b.txt", "x").read_text() == "x"
    (tmp_path / "file").write_text("")
    with pytest.raises(OutputError, match="cannot write .*/file/sub.txt: Not a directory"):
        files.write_atomic(tmp_path / "file" / "sub.txt", "x")


def test_replace_keeps_mode_and_creates_with_umask(tmp_path: Path) -> None:
    kept = tmp_path / "kept.json"
    kept.write_text("old")
    kept.chmod(0o600)
    write_atomic(kept, "new")
    assert kept.read_text() == "new" and stat.S_IMODE(kept.stat().st_mode) == 0o600
    previous = os.umask(0o027)
    try:
        fresh = write_atomic(tmp_path / "fresh.json", "x")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o640  # 0o666 & ~0o027
    assert _temporaries(tmp_path) == []


def test_symlink_to_a_regular_file_stays_a_link(tmp_path: Path) -> None:
    real = tmp_path / "real.html"
    real.write_text("old")
    link = tmp_path / "link.html"
    link.symlink_to(real)
    assert write_atomic(link, "new") == link
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_text() == "new"


def test_directory_and_dangling_link_are_refused(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match=f"^cannot write {tmp_path}: it is a directory$"):
        write_atomic(tmp_path, "x")
    dangling = tmp_path / "dangling.html"
    dangling.symlink_to(tmp_path / "missing.html")
    with pytest.raises(OutputError, match="a symlink to a missing file"):
        write_atomic(dangling, "x")
    assert dangling.is_symlink() and not (tmp_path / "missing.html").exists()


def test_text_utf8_cannot_hold_is_refused_before_writing(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="holds U[+]D800 at position 4"):
        write_atomic(tmp_path / "page.html", "conv\ud800")
    assert list(tmp_path.iterdir()) == []


def test_permission_denied_is_one_line(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o555)
        with pytest.raises(OutputError, match="locked/report.json: Permission denied$"):
            write_atomic(locked / "report.json", "x")
        return
    # root writes anywhere: show it as an unprivileged user, where this interpreter lets one run
    code = ("import sys\nfrom costlens.files import write_atomic\nfrom costlens.errors import OutputError\n"
            "try:\n    write_atomic(sys.argv[1], 'x')\nexcept OutputError as e:\n    print(e)\n")
    with tempfile.TemporaryDirectory() as shared:
        os.chmod(shared, 0o755)  # others may enter it, not write in it
        target = Path(shared) / "report.json"
        try:
            done = subprocess.run([sys.executable, "-c", code, str(target)], cwd=REPO, user=65534,
                                  capture_output=True, text=True, timeout=60)
        except PermissionError:
            pytest.skip("running as root, and this interpreter cannot be run by an unprivileged user")
        if done.returncode != 0:
            pytest.skip(f"running as root, and an unprivileged user cannot run costlens here: {done.stderr[-200:]}")
        assert done.stdout == f"cannot write {target}: Permission denied\n"
        assert not target.exists()


# -- what is not a regular file ---------------------------------------------------------------

def test_dev_null_is_written_into(tmp_path: Path) -> None:
    assert write_atomic("/dev/null", "x") == Path("/dev/null")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    link = tmp_path / "discard.html"
    link.symlink_to("/dev/null")
    write_atomic(link, "x")
    assert link.is_symlink() and stat.S_ISCHR(os.stat("/dev/null").st_mode)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="/dev/full is Linux's")
def test_dev_full_fails_loudly_and_stays_a_device() -> None:
    with pytest.raises(OutputError, match="^cannot write /dev/full: No space left on device$"):
        write_atomic("/dev/full", "x")
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


@pytest.mark.skipif(not os.path.exists("/dev/urandom") or sys.platform != "linux", reason="Linux device numbers")
def test_other_devices_are_refused_unopened() -> None:
    # /dev/urandom is 1:9; writing into it is harmless, which lets this test show the refusal safely
    with pytest.raises(OutputError,
                       match=r"^cannot write /dev/urandom: it is a character device \(1:9\); costlens writes only into"):
        write_atomic("/dev/urandom", "x")


def test_fifo_without_reader_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "page.html"
    os.mkfifo(fifo)
    error = _within(5, lambda: write_atomic(fifo, "x"))
    assert isinstance(error, OutputError)
    assert str(error) == f"cannot write {fifo}: a fifo with no reader (start the reader first)"
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_fifo_with_reader_is_written_into(tmp_path: Path) -> None:
    fifo = tmp_path / "page.html"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        _within(5, lambda: write_atomic(fifo, "report"))
        assert os.read(reader, 100) == b"report"
    finally:
        os.close(reader)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_dev_stdout_redirected_to_a_file_is_appended_not_replaced(tmp_path: Path) -> None:
    log = tmp_path / "out.txt"
    code = ("import sys\nfrom costlens.files import write_atomic\n"
            "print('before', flush=True)\nwrite_atomic(sys.argv[1], 'report')\n")
    link = tmp_path / "fd-link"
    link.symlink_to("/proc/self/fd/1")
    for target in ("/dev/stdout", "/proc/self/fd/1", str(link)):
        with log.open("w") as stream:
            inode = os.fstat(stream.fileno()).st_ino
            child = subprocess.run([sys.executable, "-c", code, target], cwd=REPO, stdout=stream, timeout=60)
        assert child.returncode == 0
        assert log.read_text() == "before\nreport"
        assert log.stat().st_ino == inode  # the same file: written into, not replaced


def test_dash_is_stdout(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    assert write_output("-", "table\n") is None
    assert write_output(None, "more\n") is None
    assert capsys.readouterr().out == "table\nmore\n"
    assert write_output(tmp_path / "t.txt", "x") == tmp_path / "t.txt"
    monkeypatch.chdir(tmp_path)
    write_atomic("-", "a file named -")  # write_atomic takes every path literally
    assert (tmp_path / "-").read_text() == "a file named -"


def test_closed_pipe_on_stdout_is_one_line() -> None:
    code = ("import sys\nfrom costlens.files import write_output\nfrom costlens.errors import OutputError\n"
            "try:\n    write_output('-', 'x' * 100)\n"
            "except OutputError as e:\n    print(e, file=sys.stderr)\n"
            "print('a later echo, as the command line prints on its way out')\nsys.exit(2)\n")
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first byte: `costlens ... | head -0`
    try:
        done = subprocess.run([sys.executable, "-c", code], cwd=REPO, stdout=write_end, stderr=subprocess.PIPE,
                              text=True, timeout=60)
    finally:
        os.close(write_end)
    assert done.returncode == 2
    # one line, and later writes to stdout are quiet instead of a second BrokenPipeError
    assert done.stderr == "cannot write to standard output: the reader closed the pipe\n"


# -- stale temporaries ------------------------------------------------------------------------

SLOW_WRITER = """
import os, sys, time
from costlens import files
def stall(descriptor):  # the temporary is complete but not yet renamed: kill us here
    print("ready", flush=True)
    time.sleep(120)
files.os.fsync = stall
files.write_atomic(sys.argv[1], "half")
"""


def _start_slow_writer(target: Path) -> subprocess.Popen[str]:
    child = subprocess.Popen([sys.executable, "-c", SLOW_WRITER, str(target)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline() == "ready\n"
    return child


def test_sigkill_mid_write_leaves_a_temporary_the_next_write_removes(tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    target.write_text("old page")
    child = _start_slow_writer(target)
    child.send_signal(signal.SIGKILL)
    child.wait(30)
    left = _temporaries(tmp_path)
    assert [p.name for p in left] == [f".report.html.costlens-{child.pid}-0.tmp"]
    assert target.read_text() == "old page"
    write_atomic(tmp_path / "other.json", "{}")  # any write into the directory cleans it
    assert _temporaries(tmp_path) == []
    assert target.read_text() == "old page"


def test_a_live_writers_temporary_is_kept(tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    child = _start_slow_writer(target)
    try:
        write_atomic(tmp_path / "other.json", "{}")
        assert len(_temporaries(tmp_path)) == 1  # its lock is held: not stale
    finally:
        child.kill()
        child.wait(30)
    assert len(clean_stale_temporaries(tmp_path)) == 1


def test_staleness_by_lock_pid_and_age(tmp_path: Path) -> None:
    finished = subprocess.run([sys.executable, "-c", "pass"], timeout=60)
    assert finished.returncode == 0
    dead_pid = subprocess.Popen([sys.executable, "-c", "pass"])
    dead_pid.wait(60)
    ours = tmp_path / f".a.html.costlens-{os.getpid()}-99.tmp"  # our own PID, as a reused PID would be
    ours.write_text("")
    locked = tmp_path / f".b.html.costlens-{dead_pid.pid}-0.tmp"  # a dead PID here, but its lock is held
    locked.write_text("")
    unrelated = tmp_path / ".c.html.other-1-0.tmp"
    unrelated.write_text("")
    with locked.open() as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)
        assert clean_stale_temporaries(tmp_path) == []  # fresh, and PID alive / lock held
        old = time.time() - files.STALE_AFTER_S - 5
        os.utime(ours, (old, old))
        assert clean_stale_temporaries(tmp_path) == [ours]  # alive PID, but unlocked and old
    assert clean_stale_temporaries(tmp_path) == [locked]
    assert unrelated.exists()


# -- all or nothing per command ---------------------------------------------------------------

def test_batch_writes_everything_after_the_block(tmp_path: Path) -> None:
    with OutputBatch() as batch:
        batch.add(tmp_path / "reports" / "m.json", "{}")
        assert not (tmp_path / "reports").exists()  # nothing before the block ends
        batch.add(tmp_path / "reports" / "m.html", "<html>")
    assert batch.written == [tmp_path / "reports" / "m.json", tmp_path / "reports" / "m.html"]
    assert (tmp_path / "reports" / "m.html").read_text() == "<html>"
    assert _temporaries(tmp_path / "reports") == []


def test_a_failed_render_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(Interrupted), OutputBatch() as batch:
        batch.add(tmp_path / "m.json", "{}")
        raise Interrupted  # the page renderer fails after the JSON was rendered
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="/dev/full is Linux's")
def test_a_failed_write_removes_what_the_batch_created(tmp_path: Path) -> None:
    kept = tmp_path / "kept.html"
    kept.write_text("old page")
    with pytest.raises(OutputError, match="^cannot write /dev/full: No space left on device$"), OutputBatch() as batch:
        batch.add(tmp_path / "reports" / "new.json", "{}")
        batch.add(kept, "new page")
        batch.add("/dev/full", "table")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.html"]  # reports/ made for the batch is gone too
    assert kept.read_text() == "old page"  # renames come after the writes that can fail


def test_a_failed_rename_removes_the_files_created_before_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    renames: list[str] = []
    real_replace = os.replace

    def second_fails(src: str, dst: str) -> None:
        renames.append(dst)
        if len(renames) == 2:
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(files.os, "replace", second_fails)
    with pytest.raises(OutputError, match="b.html: No space left on device$"), OutputBatch() as batch:
        batch.add(tmp_path / "a.json", "{}")
        batch.add(tmp_path / "b.html", "<html>")
    assert list(tmp_path.iterdir()) == []


def test_one_destination_named_twice_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "m.json"
    link = tmp_path / "link.json"
    link.symlink_to(target)
    batch = OutputBatch()
    batch.add(target, "{}")
    with pytest.raises(OutputError, match=f"^{link} is named twice as an output of one command \\(also as {target}\\)$"):
        batch.add(link, "<html>")
    batch.add("-", "table")
    with pytest.raises(OutputError, match="^standard output is named twice"):
        batch.add(None, "table")


# -- appending --------------------------------------------------------------------------------

def test_append_text(tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    assert append_text(summary, "one\n") == summary
    append_text(summary, "two\n")
    assert summary.read_text() == "one\ntwo\n"
    append_text("/dev/null", "x")
    with pytest.raises(OutputError, match="it is a directory"):
        append_text(tmp_path, "x")  # GITHUB_STEP_SUMMARY pointing at a directory


def test_dev_stdout_on_a_terminal_is_written_into() -> None:
    master, slave = os.openpty()
    code = "import sys\nfrom costlens.files import write_atomic\nwrite_atomic('/dev/stdout', 'on the terminal')\n"
    try:
        child = subprocess.run([sys.executable, "-c", code], cwd=REPO, stdout=slave, timeout=60)
        assert child.returncode == 0
        assert os.read(master, 100) == b"on the terminal"
    finally:
        os.close(master)
        os.close(slave)


def test_dev_stdout_on_a_pipe_is_written_into() -> None:
    code = "import sys\nfrom costlens.files import write_atomic\nwrite_atomic('/dev/stdout', 'down the pipe')\n"
    child = subprocess.run([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, timeout=60)
    assert (child.returncode, child.stdout) == (0, b"down the pipe")
