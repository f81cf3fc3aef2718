"""Hostile input, tried as a user would (issue 9): every case runs ``costlens`` in a process of
its own and asserts the exit code, stderr (one line, no traceback, no raw control
characters) and the files on disk afterwards (nothing clobbered, nothing half-written).

Commands run in children of tests/cli_forkserver.py (a real process each, started without
the working directory on sys.path, as the installed script is); the few cases that need a
fresh interpreter (a closed stdout, sys.path itself) run ``python -P -m costlens``.
Exit codes: 0 fine, 1 a budget failed, 2 bad input or user code that failed, 130 Ctrl-C.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
import xml.dom.minidom
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests import evil_models

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork, fifos, /dev/full and /proc: Linux")

ROOT = Path(__file__).resolve().parents[1]
EVIL = "tests.evil_models"
# Environment variables a user's shell or CI may set that would change what a command does.
_UNSET = ("GITHUB_STEP_SUMMARY", "PYTHONSAFEPATH", "PYTHONSTARTUP", "COSTLENS_DEBUG")


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _UNSET}
    env["PYTHONPATH"] = str(ROOT)  # this checkout's costlens, and tests.evil_models
    return env


@dataclass(frozen=True)
class Done:
    """How a command ended: its exit status (negative: killed by that signal), stdout and stderr."""

    rc: int | str
    stdout: str
    stderr: str


class ForkServer:
    """tests/cli_forkserver.py, started once per module."""

    def __init__(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-P", "-m", "tests.cli_forkserver"], cwd=ROOT,
                                        env=_environment(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.preloaded = self._read()["ready"]

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line, "the fork server died"
        answer: dict[str, Any] = json.loads(line)
        return answer

    def start(self, request: dict[str, Any]) -> int:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        pid: int = self._read()["pid"]
        return pid

    def status(self) -> int | str:
        status: int | str = self._read()["status"]
        return status

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


@pytest.fixture(scope="module")
def server() -> Iterator[ForkServer]:
    started = ForkServer()
    yield started
    started.close()


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """The working directory of the command; its streams are captured beside it."""
    directory = tmp_path / "work"
    directory.mkdir()
    return directory


Run = Callable[..., Done]


@pytest.fixture
def costlens(server: ForkServer, work: Path) -> Run:
    """``costlens(*args, env=, stdin=, timeout=, during=, stdout=)`` in ``work``; ``during(pid)`` runs while it
    does; ``stdout`` "closed-pipe" or "closed" instead of a file (see tests/cli_forkserver.py)."""

    def run(*args: str, env: dict[str, str] | None = None, stdin: str | None = None, timeout: float = 60,
            during: Callable[[int], None] | None = None, stdout: str | None = None) -> Done:
        out, err = work.parent / "stdout", work.parent / "stderr"
        out.write_text("")
        pid = server.start({"args": list(args), "cwd": str(work), "stdout": stdout or str(out), "stderr": str(err),
                            "stdin": stdin, "env": env or {}, "unset": list(_UNSET), "timeout": timeout})
        if during is not None:
            during(pid)
        status = server.status()
        return Done(status, out.read_text(errors="backslashreplace"), err.read_text(errors="backslashreplace"))

    return run


def python_m(work: Path, *args: str, timeout: float = 120, **options: Any) -> Done:
    """``python -P -m costlens ARGS`` in ``work``: a fresh interpreter, as the installed script runs."""
    options.setdefault("stdout", subprocess.PIPE)
    done = subprocess.run([sys.executable, "-P", "-m", "costlens", *args], cwd=work, env=_environment(),
                          stderr=subprocess.PIPE, timeout=timeout, **options)
    return Done(done.returncode, (done.stdout or b"").decode(errors="backslashreplace"),
                done.stderr.decode(errors="backslashreplace"))


# --- what is on disk ------------------------------------------------------------------------


def snapshot(root: Path) -> dict[str, str]:
    """Every entry under ``root``: its kind, and a digest of each regular file's content."""
    found = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        if stat.S_ISREG(info.st_mode):
            found[str(path.relative_to(root))] = "file " + hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        elif stat.S_ISLNK(info.st_mode):
            found[str(path.relative_to(root))] = "link " + os.readlink(path)
        else:
            found[str(path.relative_to(root))] = stat.filemode(info.st_mode)[0]
    return found


def assert_complete(work: Path) -> None:
    """Whatever reports exist are whole: JSON parses, pages end, no temporaries are left."""
    for path in work.rglob("*"):
        assert not path.name.endswith(".tmp"), f"a temporary was left: {path}"
        if path.suffix == ".json" and path.is_file():
            json.loads(path.read_text())
        if path.suffix == ".html" and path.is_file():
            assert path.read_text().rstrip().endswith("</html>"), f"{path} is cut short"


def refused(done: Done, needle: str, code: int = 2) -> None:
    """Exit ``code`` with one line on stderr, 'costlens: error: ...' holding ``needle``."""
    assert done.rc == code, done
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("costlens: error: "), done.stderr
    assert needle in lines[0], done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert not any(c in done.stderr for c in "\x1b\r\x00\u202e"), done.stderr


def refused_after_saving(done: Done, needle: str) -> None:
    """``refused``, but the profile command has already said where it saved its reports (see the
    known gap at the end of this file): that line, then the error."""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("saved "), done.stderr
    refused(Done(done.rc, done.stdout, lines[1]), needle)


def refused_leaving_nothing(done: Done, needle: str, work: Path, before: dict[str, str], code: int = 2) -> None:
    refused(done, needle, code)
    assert snapshot(work) == before, "the refused command changed the files"


def write(work: Path, name: str, text: str) -> Path:
    path = work / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def test_the_fork_server_preloads_nothing_a_command_imports_lazily(server: ForkServer) -> None:
    """Else a stray plotly.py or pandas.py in the working directory could not be tested."""
    assert server.preloaded == []


# --- 1. user code that tries to end the run: contained, exit 2 (Ctrl-C stays 130) --------------

@pytest.mark.parametrize(("factory", "needle"), [
    ("exit_zero", f"the factory '{EVIL}:exit_zero' called sys.exit(0)"),
    ("exit_text", f"the factory '{EVIL}:exit_text' called sys.exit('bye')"),
    ("raise_base", f"the factory '{EVIL}:raise_base' raised Boom: boom"),
    ("raise_generator_exit", "raised GeneratorExit"),
    ("forward_exits", f"the forward of {EVIL}:forward_exits called sys.exit(0)"),
    ("forward_raises_base", "raised Boom: in forward"),
    ("forward_hard_exits", f"the forward of {EVIL}:forward_hard_exits called os._exit(3)"),
    ("abort_at_build", f"the factory '{EVIL}:abort_at_build' called os.abort()"),
])
def test_user_code_that_exits_is_one_line_exit_2(costlens: Run, work: Path, factory: str, needle: str) -> None:
    done = costlens("profile", f"{EVIL}:{factory}", "--input", "1x3x8x8")
    refused_leaving_nothing(done, needle, work, {})


@pytest.mark.parametrize("factory", ["raise_interrupt", "forward_interrupts"])
def test_keyboard_interrupt_from_user_code_stays_130(costlens: Run, work: Path, factory: str) -> None:
    done = costlens("profile", f"{EVIL}:{factory}", "--input", "1x3x8x8")
    assert done.rc == 130
    assert done.stderr.strip() == "costlens: interrupted"  # after click's blank line that ends a terminal's ^C
    assert snapshot(work) == {}


def test_forward_exit_on_cpu_is_contained_in_the_memory_estimate_too(costlens: Run, work: Path) -> None:
    done = costlens("profile", f"{EVIL}:forward_exits", "--input", "1x3x8x8", "--device", "cpu")
    refused_leaving_nothing(done, "called sys.exit(0)", work, {})


def test_an_exit_at_import_time_is_contained(costlens: Run, work: Path) -> None:
    write(work, "quits.py", "import sys\nsys.exit(3)\n")
    before = snapshot(work)
    refused_leaving_nothing(costlens("profile", "quits:build", "--input", "1x3x8x8"),
                            "importing 'quits' called sys.exit(3)", work, before)


def test_an_exit_from_a_module_getattr_is_contained(costlens: Run, work: Path) -> None:
    write(work, "lazy.py", "import sys\ndef __getattr__(name):\n    sys.exit('no ' + name)\n")
    before = snapshot(work)
    refused_leaving_nothing(costlens("profile", "lazy:build", "--input", "1x3x8x8"),
                            "looking up 'build' in 'lazy' called sys.exit('no build')", work, before)


def test_builtins_exit_as_a_factory(costlens: Run, work: Path) -> None:
    refused_leaving_nothing(costlens("profile", "builtins:exit", "--input", "1x3x8x8"), "called sys.exit(None)", work, {})


def test_builtins_input_as_a_factory_reads_an_empty_stdin(costlens: Run, work: Path) -> None:
    refused_leaving_nothing(costlens("profile", "builtins:input", "--input", "1x3x8x8"), "EOFError", work, {})


def test_os_system_as_a_factory_is_called_without_a_command(costlens: Run, work: Path) -> None:
    """The meta build fails, the cpu build fails the same way: one line, no warning before it."""
    refused_leaving_nothing(costlens("profile", "os:system", "--input", "1x3x8x8"), "failed to build the model", work, {})


def test_a_budget_never_passes_because_its_model_exited(costlens: Run, work: Path) -> None:
    write(work, "budget.toml", f"""
        [models]
        quitter = {{ import = "{EVIL}:exit_zero", input = "1x3x8x8" }}
        rules = ["quitter.macs <= 1G"]
    """)
    before = snapshot(work)
    done = costlens("check", "budget.toml", "--junit", "j.xml")
    refused_leaving_nothing(done, "budget.toml:3: model 'quitter': the factory", work, before)
    assert "pass" not in done.stdout


def test_a_budget_whose_forward_raises_a_base_exception(costlens: Run, work: Path) -> None:
    write(work, "budget.toml", f"""
        [models]
        b = {{ import = "{EVIL}:forward_raises_base", input = "1x3x8x8" }}
        rules = ["b.macs <= 1G"]
    """)
    before = snapshot(work)
    refused_leaving_nothing(costlens("check", "budget.toml"), "raised Boom: in forward", work, before)


def test_compare_with_a_model_that_exits(costlens: Run, work: Path) -> None:
    refused_leaving_nothing(costlens("compare", f"{EVIL}:exit_zero", "conv5x5", "--input", "1x3x8x8"),
                            "called sys.exit(0)", work, {})


def test_an_exit_while_timed_is_contained(costlens: Run, work: Path) -> None:
    done = costlens("profile", f"{EVIL}:forward_exits_on_real_tensors", "--input", "1x3x8x8", "--time", "--device", "cpu",
                    "--peak-flops", "100G", "--bandwidth", "10G", "--no-layers")
    refused_leaving_nothing(done, "while it was timed, called sys.exit(0)", work, {})


def test_an_exit_during_the_crosscheck_is_contained(costlens: Run, work: Path) -> None:
    done = costlens("profile", f"{EVIL}:forward_exits_on_real_tensors", "--input", "1x3x8x8", "--crosscheck")
    refused_leaving_nothing(done, "called sys.exit(0)", work, {})  # the cross-check runs before any report


def test_ctrl_c_during_the_forward(costlens: Run, work: Path) -> None:
    done = costlens("profile", f"{EVIL}:forward_sleeps", "--input", "1x3x8x8",
                    during=_signal_once_asleep(work, signal.SIGINT))
    assert done.rc == 130 and done.stderr.strip() == "costlens: interrupted", done
    assert snapshot(work) == {"sleeping": _EMPTY}  # the model's own marker; no report


def test_sigterm_during_the_forward_leaves_nothing(costlens: Run, work: Path) -> None:
    done = costlens("profile", f"{EVIL}:forward_sleeps", "--input", "1x3x8x8",
                    during=_signal_once_asleep(work, signal.SIGTERM))
    assert done.rc == -signal.SIGTERM
    assert snapshot(work) == {"sleeping": _EMPTY}


_EMPTY = "file " + hashlib.sha256(b"").hexdigest()[:16]


def _signal_once_asleep(work: Path, number: int) -> Callable[[int], None]:
    """Send signal ``number`` once the forward has written its marker (tests/evil_models.py) and sleeps."""
    def send(pid: int) -> None:
        deadline = time.monotonic() + 30
        while not (work / "sleeping").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)
        os.kill(pid, number)
    return send


# --- 2. bad input that was exit 3 (internal error): now exit 2, before anything is written --------

@pytest.mark.parametrize(("args", "needle"), [
    (["--input", "99999999999999999999x3x224x224"], "beyond what any device can address"),
    (["--input", "4611686018427387904x192x28x28"], "beyond what any device can address"),  # 2**62 × ...: overflows int64
    (["--batch", "99999999999999999999999"], "batch sizes must be between 1 and"),
    (["--batch", "0"], "batch sizes must be between 1 and"),
    (["--input", "1x192x28"], "layer 'conv' (Conv2d) failed"),
    (["--input", "1x192x-28x28"], "has a size below 1"),
    (["--input", ""], "malformed input shape"),
    (["--input", "1x192x28x28x" + "9" * 400], "beyond what any device can address"),
    (["--input", "1x192x28x28x" + "9" * 5000], "malformed input shape"),  # more digits than int() reads
    (["--device", "cuda"], "not available here"),
    (["--depth", "-1"], "Invalid value for '--depth'"),
    (["--dtype", "int64"], "Invalid value for '--dtype'"),
], ids=["input-20-digits", "input-int64-overflow", "batch-23-digits", "batch-0", "input-3d", "input-negative",
        "input-empty", "input-400-digits", "input-5000-digits", "cuda-absent", "depth-negative", "dtype-int64"])
def test_bad_input_is_refused_before_anything_is_written(costlens: Run, work: Path, args: list[str], needle: str) -> None:
    refused_leaving_nothing(costlens("profile", "conv5x5", *args), needle, work, {})


def test_a_model_nested_2000_deep(costlens: Run, work: Path) -> None:
    done = costlens("profile", f"{EVIL}:nested_2000", "--input", "1x3x8x8")
    refused_leaving_nothing(done, "is nested too deeply to trace (2,000 levels of submodules)", work, {})


@pytest.mark.parametrize(("factory", "needle"), [
    ("surrogate_name", "the path of layer 'conv\\udcff' holds U+DCFF, a lone surrogate"),
    ("surrogate_class_name", "failed to build the model: UnicodeEncodeError"),  # Python refuses the class itself
])
def test_names_no_report_can_hold_are_refused_before_the_json_is_saved(costlens: Run, work: Path, factory: str,
                                                                      needle: str) -> None:
    refused_leaving_nothing(costlens("profile", f"{EVIL}:{factory}", "--input", "1x3x8x8"), needle, work, {})


def test_a_model_name_with_invalid_utf8_bytes(costlens: Run, work: Path) -> None:
    """argv bytes that are not UTF-8 arrive as lone surrogates (PEP 383)."""
    refused_leaving_nothing(costlens("profile", os.fsdecode(b"\xffnet")), "unknown model '\\udcffnet'", work, {})


def test_a_model_name_with_escape_sequences_stays_one_line(costlens: Run, work: Path) -> None:
    refused_leaving_nothing(costlens("profile", "\x1b[2J\x1b[31mred\nnet\u202e"), "unknown model '\\x1b[2J", work, {})


@pytest.mark.parametrize("spec", ["mod:", ":build", "no_such_module_x:build", "json:nope"])
def test_import_paths_that_name_nothing(costlens: Run, work: Path, spec: str) -> None:
    refused_leaving_nothing(costlens("profile", spec, "--input", "1x3x8x8"), spec.partition(":")[0] or "import path",
                            work, {})


# --- 3. memory: estimated and refused with the figure before any allocation ----------------------

def test_cpu_input_beyond_memory_is_refused_with_the_figure(costlens: Run, work: Path) -> None:
    # 192 × 20000 × 20000 × 4 bytes = 307,200,000,000 = 307 GB, beyond this machine's memory
    done = costlens("profile", "conv5x5", "--input", "1x192x20000x20000", "--device", "cpu", timeout=30)
    refused_leaving_nothing(done, "cannot allocate a 1x192x20000x20000 float32 input on cpu: it needs 307 GB", work, {})


def test_cpu_forward_beyond_memory_is_refused_with_the_figure(costlens: Run, work: Path) -> None:
    # weights 138,357,544 × 4 = 553 MB (VGG-16's published 138M parameters); while conv1_2 runs, the
    # model's input (3 × 20000² × 4 = 4.8 GB), its own input (conv1_1's output, 64 × 20000² × 4 =
    # 102.4 GB) and its output (as much) are alive: 4.8 + 2 × 102.4 = 209.6 GB, 210.2 GB in all,
    # refused before any weight is allocated
    done = costlens("profile", "vgg16", "--input", "1x3x20000x20000", "--device", "cpu", timeout=30)
    refused_leaving_nothing(done, "vgg16: cannot run the forward on cpu: it needs 210 GB (weights 553 MB, the inputs "
                                  "and the activations alive at once 210 GB)", work, {})


def test_crosscheck_beyond_memory_is_refused_with_the_figure(costlens: Run, work: Path) -> None:
    # weights (5·5·192·32 + 32) × 4 = 614,528 bytes; the input 192 × 20000² × 4 = 307.2 GB is the conv's
    # input, and it writes 32 × 20000² × 4 = 51.2 GB: 358 GB on real tensors
    done = costlens("profile", "conv5x5", "--input", "1x192x20000x20000", "--crosscheck", timeout=60)
    refused_leaving_nothing(done, "--crosscheck runs conv5x5 on real CPU tensors: it needs 358 GB (weights 615 kB, "
                                  "the inputs and the activations alive at once 358 GB)", work, {})


# --- 4. budget files ----------------------------------------------------------------------------

def _budget(work: Path, body: str) -> dict[str, str]:
    write(work, "budget.toml", body)
    return snapshot(work)


@pytest.mark.parametrize(("body", "needle"), [
    (f'rules = ["conv5x5.macs <= {"9" * 400}"]\n', "budget.toml:1: the limit 999"),
    (f'rules = ["conv5x5.macs <= {"9" * 300}"]\n', "is beyond 10**30, larger than any count"),
    (f'rules = ["conv5x5.macs <= {"9" * 400} * lenet5.macs"]\n', "the factor 999"),
    ('rules = ["conv5x5.macs <= 1e999"]\n', "unparsable number '1e999'"),
    ('[models]\nm = { zoo = 5 }\nrules = ["m.macs <= 1G"]\n', "budget.toml:2: model 'm': zoo must be a zoo name, got int 5"),
    ('[models]\nm = { import = ["a:b"], input = "1x3x8x8" }\nrules = ["m.macs <= 1G"]\n', "import must be an import path"),
    ('[models]\nm = { profile = "" }\nrules = ["m.macs <= 1G"]\n', "profile must be a saved profile's path, got an empty"),
    ('[models]\nm = { zoo = "lenet5", input = 32 }\nrules = ["m.macs <= 1G"]\n', "input must be a shape"),
    ('[models]\nm = "conv5x5"\nrules = ["m.macs <= 1G"]\n', "model 'm' needs exactly one of"),
    ('[models]\n"a\\u0001b" = { zoo = "lenet5" }\nrules = ["lenet5.macs <= 1G"]\n', "alias 'a\\x01b' must be a name"),
    ('[models]\n"x y" = { zoo = "lenet5" }\nrules = ["lenet5.macs <= 1G"]\n', "alias 'x y' must be a name"),
    ('rules = "conv5x5.macs <= 1G"\n', "rules must be a non-empty list"),
    ('rules = [1, 2]\n', "rules must be a non-empty list of strings"),
    ('rules = ["conv5x5.macs <= 1G"]\nrules2 = 1\n', "unknown key(s) rules2"),
    ('rules = ["conv5x5.macs <= 1G"\n', "not valid TOML"),
    ('rules = ["conv5x5.macs <= 1G", "conv5x5.macs !! 1"]\n', "cannot read rule"),
    ('rules = ["conv5x5.latency_ms <= 5"]\n', "'latency_ms' is measured"),
], ids=["limit-400-digits", "limit-300-digits", "factor-400-digits", "limit-1e999", "zoo-int", "import-list",
        "profile-empty", "input-int", "model-not-a-table", "alias-control-character", "alias-space", "rules-a-string",
        "rules-numbers", "unknown-key", "unclosed-array", "bad-operator", "measured-absolute"])
def test_malformed_budgets_are_one_line_exit_2(costlens: Run, work: Path, body: str, needle: str) -> None:
    before = _budget(work, body)
    refused_leaving_nothing(costlens("check", "budget.toml", "--junit", "j.xml"), needle, work, before)


def test_an_alias_that_shadows_a_zoo_name_is_refused(costlens: Run, work: Path) -> None:
    before = _budget(work, f"""
        [models]
        conv5x5 = {{ import = "{EVIL}:build", input = "1x3x8x8" }}
        rules = ["conv5x5.macs <= 120,422,400"]
    """)
    refused_leaving_nothing(costlens("check", "budget.toml"),
                            "budget.toml:2: model alias 'conv5x5' is the zoo's conv5x5", work, before)


def test_an_alias_that_names_the_zoo_model_itself_is_fine(costlens: Run, work: Path) -> None:
    _budget(work, '[models]\nconv5x5 = { zoo = "conv5x5" }\nrules = ["conv5x5.macs == 120,422,400"]\n')
    done = costlens("check", "budget.toml")
    assert done.rc == 0 and done.stderr == "", done


def test_a_rule_quoted_in_a_comment_is_reported_at_its_own_line(costlens: Run, work: Path) -> None:
    _budget(work, '''
        # "conv5x5.macs <= 1" was the old limit
        rules = [
          # "conv5x5.macs <= 1" is too strict
          'conv5x5.macs <= 1G',  # "conv5x5.macs <= 1"
          """conv5x5.macs <= 1""",
        ]
    ''')
    done = costlens("check", "budget.toml")
    assert done.rc == 1 and done.stderr == "", done
    failing = next(line for line in done.stdout.splitlines() if "FAIL" in line)
    assert failing.split()[0] == "5"  # the line of the rule, not of a comment quoting it


def test_an_alias_is_reported_at_its_own_line(costlens: Run, work: Path) -> None:
    before = _budget(work, '# x = { zoo = "nothing" } is how a model is named\n[models]\nok = { zoo = "lenet5" }\n'
                           'x = { zoo = 5 }\nrules = ["ok.macs <= 1G"]\n')
    refused_leaving_nothing(costlens("check", "budget.toml"), "budget.toml:4: model 'x'", work, before)


@pytest.mark.parametrize("target", ["/dev/zero", "/dev/urandom", "fifo", "directory"])
def test_a_budget_file_that_is_not_a_file(costlens: Run, work: Path, target: str) -> None:
    if target == "fifo":
        os.mkfifo(work / "fifo")
    if target == "directory":
        (work / "directory").mkdir()
    before = snapshot(work)
    refused_leaving_nothing(costlens("check", target, timeout=20), "not a regular file", work, before)


@pytest.mark.parametrize("target", ["/dev/zero", "fifo.json"])
def test_a_budget_profile_that_is_not_a_file(costlens: Run, work: Path, target: str) -> None:
    if target == "fifo.json":
        os.mkfifo(work / target)
    before = _budget(work, f'[models]\nold = {{ profile = "{target}" }}\nrules = ["old.macs <= 1G"]\n')
    refused_leaving_nothing(costlens("check", "budget.toml", timeout=20), "not a regular file", work, before)


def test_step_summary_pointing_at_a_directory_does_not_hide_a_pass(costlens: Run, work: Path) -> None:
    (work / "summary").mkdir()
    before = _budget(work, 'rules = ["conv5x5.macs == 120,422,400"]\n')
    done = costlens("check", "budget.toml", env={"GITHUB_STEP_SUMMARY": str(work / "summary")})
    refused_leaving_nothing(done, "GITHUB_STEP_SUMMARY: cannot write", work, before)
    assert "pass" in done.stdout  # the table was shown


def test_step_summary_pointing_at_a_directory_does_not_hide_a_fail(costlens: Run, work: Path) -> None:
    (work / "summary").mkdir()
    before = _budget(work, 'rules = ["conv5x5.macs <= 1"]\n')
    done = costlens("check", "budget.toml", env={"GITHUB_STEP_SUMMARY": str(work / "summary")})
    refused_leaving_nothing(done, "it is a directory", work, before, code=1)
    assert "FAIL" in done.stdout


def test_step_summary_on_dev_full_is_one_line(costlens: Run, work: Path) -> None:
    before = _budget(work, 'rules = ["conv5x5.macs == 120,422,400"]\n')
    done = costlens("check", "budget.toml", env={"GITHUB_STEP_SUMMARY": "/dev/full"})
    refused_leaving_nothing(done, "GITHUB_STEP_SUMMARY", work, before)
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_step_summary_is_appended_to(costlens: Run, work: Path) -> None:
    _budget(work, 'rules = ["conv5x5.macs == 120,422,400"]\n')
    (work / "summary.md").write_text("earlier step\n")
    done = costlens("check", "budget.toml", env={"GITHUB_STEP_SUMMARY": str(work / "summary.md")})
    assert done.rc == 0 and done.stderr == "", done
    summary = (work / "summary.md").read_text()
    assert summary.startswith("earlier step\n") and "conv5x5.macs" in summary


@pytest.mark.parametrize(("target", "needle"), [("/dev/full", "No space left"), ("budget.toml/j.xml", "budget.toml/j.xml")])
def test_an_unwritable_junit_file_turns_a_pass_into_exit_2(costlens: Run, work: Path, target: str, needle: str) -> None:
    before = _budget(work, 'rules = ["conv5x5.macs == 120,422,400"]\n')
    done = costlens("check", "budget.toml", "--junit", target)
    refused_leaving_nothing(done, needle, work, before)
    assert "pass" in done.stdout  # the verdicts were shown


def test_a_junit_path_that_is_a_directory_is_refused_before_checking(costlens: Run, work: Path) -> None:
    (work / "out").mkdir()
    before = _budget(work, 'rules = ["conv5x5.macs == 120,422,400"]\n')
    refused_leaving_nothing(costlens("check", "budget.toml", "--junit", "out"), "is a directory", work, before)


def test_junit_stays_well_formed_with_control_characters_in_a_block(costlens: Run, work: Path) -> None:
    _budget(work, f"""
        [models]
        evil = {{ import = "{EVIL}:control_names", input = "1x3x8x8" }}
        rules = ["evil:{_toml_escaped(evil_models.CONTROL_NAME)}.macs <= 1"]
    """)
    done = costlens("check", "budget.toml", "--junit", "j.xml")
    assert done.rc == 1, done
    assert done.stderr.strip() == "wrote j.xml"
    assert "\x1b" not in done.stdout and "\x01" not in done.stdout
    case = xml.dom.minidom.parse(str(work / "j.xml")).getElementsByTagName("testcase")[0]
    assert "\\x01" in case.getAttribute("name")


def _toml_escaped(text: str) -> str:
    return "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in text)


CLOSED_PIPE_WARNING = "costlens: warning: the table is not shown: cannot write to standard output: the reader closed the pipe"


def test_check_with_stdout_a_closed_pipe_keeps_the_verdict_and_writes_junit(costlens: Run, work: Path) -> None:
    write(work, "budget.toml", 'rules = ["conv5x5.macs == 120,422,400"]\n')
    done = costlens("check", "budget.toml", "--junit", "j.xml", stdout="closed-pipe")
    assert done.rc == 0, done
    assert done.stderr.splitlines() == [CLOSED_PIPE_WARNING, "wrote j.xml"]
    assert xml.dom.minidom.parse(str(work / "j.xml")).getElementsByTagName("testsuite")[0].getAttribute("failures") == "0"


def test_check_with_stdout_closed_keeps_the_verdict(costlens: Run, work: Path) -> None:
    write(work, "budget.toml", 'rules = ["conv5x5.macs <= 1"]\n')
    done = costlens("check", "budget.toml", "--junit", "j.xml", stdout="closed")
    assert done.rc == 1, done
    assert done.stderr.splitlines() == [
        "costlens: warning: the table is not shown: cannot write to standard output: it is closed", "wrote j.xml"]
    assert xml.dom.minidom.parse(str(work / "j.xml")).getElementsByTagName("testsuite")[0].getAttribute("failures") == "1"


def test_profile_with_stdout_a_closed_pipe_says_so(costlens: Run, work: Path) -> None:
    done = costlens("profile", "conv5x5", stdout="closed-pipe")
    refused(done, "cannot write to standard output: the reader closed the pipe")
    assert_complete(work)


# --- 5. saved profiles: validated, and never read from what is not a file -------------------------

@pytest.fixture(scope="module")
def saved() -> dict[str, Any]:
    from costlens.api import profile

    data: dict[str, Any] = json.loads(profile("conv5x5").to_json())
    return data


def _mutated(saved: dict[str, Any], change: Callable[[dict[str, Any]], None]) -> str:
    data = json.loads(json.dumps(saved))
    change(data)
    return json.dumps(data)


def _set(path: tuple[Any, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        target = data
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return change


@pytest.mark.parametrize(("change", "needle"), [
    (_set(("layers",), "str"), "layers: expected a non-empty list of layer records"),
    (_set(("layers", 1, "macs"), "many"), "layers[1].macs: expected a non-negative integer"),
    (_set(("layers", 1, "macs"), -5), "layers[1].macs: expected a non-negative integer"),
    (_set(("layers", 1, "macs"), None), "layers[1].macs"),
    (_set(("layers", 1, "depth"), "1"), "layers[1].depth"),
    (_set(("device",), "cpu"), "device: expected an object"),
    (_set(("model",), {"a": 1}), "model: expected a string"),
    (_set(("totals", "macs"), 10**400), "totals.macs"),
    (_set(("layers", 1, "path"), "conv\udcff"), "layers[1].path"),
], ids=["layers-a-string", "macs-a-word", "macs-negative", "macs-null", "depth-a-string", "device-a-string",
        "model-an-object", "macs-10**400", "path-lone-surrogate"])
def test_bad_saved_profiles_name_the_first_bad_field(costlens: Run, work: Path, saved: dict[str, Any],
                                                    change: Callable[[dict[str, Any]], None], needle: str) -> None:
    (work / "bad.json").write_text(_mutated(saved, change))
    before = snapshot(work)
    refused_leaving_nothing(costlens("compare", "bad.json", "conv5x5"), needle, work, before)


@pytest.mark.parametrize(("text", "needle"), [
    ('{"schema": "costlens.profile/1", "x": NaN}', "NaN"),
    ('{"schema": "costlens.profile/1", "x": Infinity}', "Infinity"),
    ("[" * 100_000 + "]" * 100_000, "nested"),
    ("\xff\xfe", "not UTF-8"),
], ids=["NaN", "Infinity", "nested-100000", "latin-1"])
def test_saved_profiles_that_are_not_json(costlens: Run, work: Path, text: str, needle: str) -> None:
    (work / "bad.json").write_bytes(text.encode("latin-1") if text == "\xff\xfe" else text.encode())
    before = snapshot(work)
    refused_leaving_nothing(costlens("compare", "bad.json", "conv5x5"), needle, work, before)


@pytest.mark.parametrize("target", ["/dev/zero", "/dev/urandom", "fifo.json", "link.json", "dir.json"])
def test_compare_with_a_profile_that_is_not_a_file_is_refused_at_once(costlens: Run, work: Path, target: str) -> None:
    if target == "fifo.json":
        os.mkfifo(work / target)
    if target == "link.json":
        (work / target).symlink_to("/dev/zero")
    if target == "dir.json":
        (work / target).mkdir()
    before = snapshot(work)
    started = time.monotonic()
    done = costlens("compare", target, "inception", timeout=20)
    refused_leaving_nothing(done, "not a regular file", work, before)
    assert time.monotonic() - started < 15  # refused, not read until memory runs out


# --- 6. outputs: never clobbered, never half-written ------------------------------------------

def test_output_to_dev_full_fails_loudly_and_stays_a_device(costlens: Run, work: Path) -> None:
    refused(costlens("profile", "conv5x5", "-o", "/dev/full"), "No space left on device")
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)
    assert_complete(work)


def test_output_to_dev_null_is_written_into_and_stays_a_device(costlens: Run, work: Path) -> None:
    done = costlens("profile", "conv5x5", "--format", "csv", "-o", "/dev/null")
    assert done.rc == 0, done
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)  # as root, a rename over it would replace the device
    assert_complete(work)


def test_save_into_a_fifo_without_reader_is_refused_at_once(costlens: Run, work: Path) -> None:
    os.mkfifo(work / "out.json")
    done = costlens("profile", "conv5x5", "--save", "out.json", timeout=20)
    refused(done, "out.json")
    assert stat.S_ISFIFO((work / "out.json").lstat().st_mode)
    assert_complete(work)


def test_output_into_a_directory_is_refused(costlens: Run, work: Path) -> None:
    (work / "out").mkdir()
    refused(costlens("profile", "conv5x5", "-o", "out"), "out")
    assert (work / "out").is_dir() and not any((work / "out").iterdir())
    assert_complete(work)


def test_output_through_a_link_to_a_regular_file_keeps_the_link(costlens: Run, work: Path) -> None:
    (work / "real.csv").write_text("old\n")
    (work / "link.csv").symlink_to("real.csv")
    done = costlens("profile", "conv5x5", "--format", "csv", "-o", "link.csv")
    assert done.rc == 0, done
    assert (work / "link.csv").is_symlink() and (work / "real.csv").read_text().startswith("path,type")
    assert_complete(work)


def test_a_stale_temporary_of_a_killed_writer_is_cleaned_by_the_next_run(costlens: Run, work: Path) -> None:
    dead = subprocess.Popen(["true"])  # a process that has ended: its PID names no writer
    dead.wait()
    (work / "reports").mkdir()
    left = work / "reports" / f".conv5x5.html.costlens-{dead.pid}-0.tmp"
    left.write_text("<html>half a page")  # what SIGKILL mid-write leaves
    done = costlens("profile", "conv5x5")
    assert done.rc == 0, done
    assert not left.exists()
    assert_complete(work)


# --- 7. what the fixes must not break ------------------------------------------------

def test_the_working_directory_cannot_shadow_installed_packages(work: Path) -> None:
    """A stray plotly.py or pandas.py beside the user's model must not run (issue 9, item 8)."""
    marker = work / "stray-ran"
    for stray in ("plotly.py", "pandas.py"):
        write(work, stray, f"open({str(marker)!r}, 'w').close()\nraise SystemExit('stray {stray}')\n")
    write(work, "tinynet.py", "from torch import nn\ndef build():\n    return nn.Conv2d(3, 4, 3)\n")
    done = python_m(work, "profile", "tinynet:build", "--input", "1x3x8x8")
    assert done.rc == 0, done
    assert not marker.exists()
    assert_complete(work)


def test_a_model_file_named_like_an_installed_package_gets_a_hint(costlens: Run, work: Path) -> None:
    write(work, "plotly.py", "def build():\n    raise SystemExit('not me')\n")
    before = snapshot(work)
    refused_leaving_nothing(costlens("profile", "plotly:build", "--input", "1x3x8x8"),
                            "installed packages come before ./plotly.py; rename it", work, before)


def test_a_factory_in_the_working_directory_still_imports(costlens: Run, work: Path) -> None:
    write(work, "tinynet.py", "from torch import nn\ndef build():\n    return nn.Conv2d(3, 4, 3)\n")
    done = costlens("profile", "tinynet:build", "--input", "1x3x8x8", "--format", "json", "--save", "t.json")
    assert done.rc == 0, done
    assert json.loads(done.stdout)["totals"]["macs"] == 6 * 6 * 4 * 3 * 3 * 3  # 6·6·4 outputs × 3·3·3 = 3,888
    assert_complete(work)


def test_the_fork_server_matches_a_fresh_interpreter(costlens: Run, work: Path) -> None:
    """One case both ways, stdout a closed pipe included: tests/cli_forkserver.py stands in faithfully
    for `python -P -m costlens`, the interpreter's flush at exit included."""
    write(work, "budget.toml", 'rules = ["conv5x5.macs == 120,422,400"]\n')
    forked = costlens("check", "budget.toml", "--junit", "j.xml", stdout="closed-pipe")
    reader, writer = os.pipe()
    os.close(reader)
    try:
        fresh = python_m(work, "check", "budget.toml", "--junit", "j.xml", stdout=writer)
    finally:
        os.close(writer)
    assert forked == fresh
    assert fresh.rc == 0 and fresh.stderr.splitlines() == [CLOSED_PIPE_WARNING, "wrote j.xml"]


# --- a failing profile command leaves nothing behind ----------------------------------------------

@pytest.mark.parametrize("args", [
    ["-o", "/dev/full"],
    ["--plotlyjs", "/dev/full"],
    ["--input", "1x192x20000x20000", "--crosscheck"],
    ["--save", "out.txt", "-o", "out.txt"],  # one place named twice: refused before anything is written
], ids=["output-dev-full", "plotlyjs-dev-full", "crosscheck-too-large", "save-and-output-one-file"])
def test_a_failing_profile_command_writes_nothing(costlens: Run, work: Path, args: list[str]) -> None:
    done = costlens("profile", "conv5x5", *args)
    refused_leaving_nothing(done, "", work, {})


# --- 8. the surface added since (issue 22): timing, training, ensembles, sweeps, budgets -----------
# Timed cases give the device's peaks (no calibration) and time end to end only, on tiny models.

TIMED = ("--time", "--device", "cpu", "--peak-flops", "100G", "--bandwidth", "10G")
TINY = ("--input", "1x3x8x8")
# Timed alone, a model is run until the spread of its median is small (up to 10 s): a 64x64 input
# is slow enough (about 0.1 ms) that Python's overhead does not make it noisy, and quick to get there.
STEADY = ("--input", "1x3x64x64")


@pytest.mark.parametrize(("args", "needle"), [
    ([f"{EVIL}:raises_after_warm_up", *TINY, *TIMED, "--no-layers"], "raised RuntimeError: boom on real call 11"),
    ([f"{EVIL}:raises_when_trained", *TINY, "--train", "--time", "--device", "cpu"],
     "raised RuntimeError: boom in a training step"),
], ids=["forward-after-warm-up", "training-step"])
def test_user_code_raising_while_timed_is_one_line(costlens: Run, work: Path, args: list[str], needle: str) -> None:
    refused_leaving_nothing(costlens("profile", *args), needle, work, {})


def test_a_budget_whose_model_raises_while_timed_names_its_rule(costlens: Run, work: Path) -> None:
    before = _budget(work, f"""
        [models]
        bad = {{ import = "{EVIL}:raises_after_warm_up", input = "1x3x8x8" }}
        good = {{ import = "{EVIL}:tiny", input = "1x3x8x8" }}
        rules = ["bad.latency_ms <= 2 * good.latency_ms"]
    """)
    refused_leaving_nothing(costlens("check", "budget.toml"), "budget.toml:4: ", work, before)
    assert "boom on real call" in (work.parent / "stderr").read_text()


@pytest.mark.parametrize(("models", "args", "needle"), [
    # every leaf but this one is replayed and the end-to-end figures stand, the leaf named
    (["leaf_raises_when_replayed"], [*TINY, "--layer-time", "0.01", "--latency-time", "0.05", "--latency-cap", "0.5"],
     "leaf boom"),
    # channels-last of 5-D weights: converted to channels_last_3d
    (["conv3d"], ["--input", "1x3x4x8x8", "--no-layers", "--channels-last"], None),
], ids=["leaf-in-replay", "channels-last-3d"])
def test_timing_failures_are_reported_and_the_run_goes_on(costlens: Run, work: Path, models: list[str],
                                                          args: list[str], needle: str | None) -> None:
    command = "compare" if len(models) > 1 else "profile"
    done = costlens(command, *(f"{EVIL}:{model}" for model in models), *TIMED, *args, "--no-save")
    assert done.rc == 0, done
    assert "Traceback" not in done.stderr
    if needle is not None:
        assert needle in done.stdout + done.stderr


@pytest.mark.parametrize("command", [["profile", "lenet5"], ["compare", "lenet5"]])
def test_an_ensemble_member_that_is_a_digit_elsewhere_is_an_unknown_model(costlens: Run, work: Path,
                                                                          command: list[str]) -> None:
    # '²'.isdigit() is True and int('²') fails: it is a member's name, and no model has it
    refused_leaving_nothing(costlens(*command, "--ensemble", "²", "--no-save"), "--ensemble: unknown model '²'", work, {})


@pytest.mark.parametrize(("args", "needle"), [
    (["lenet5", "--batch", "1,inf"], "--batch: 'inf' is not a whole number"),
    (["lenet5", "--batch", "1,nan"], "--batch: 'nan' is not a whole number"),
    (["lenet5", "--batch", "1.5,2.5"], "--batch: '1.5' is not a whole number"),  # not rounded to 1,2
    (["lenet5", "--batch", "2,2"], "--batch: 2 is listed twice"),
    (["resnet18", "--depth", "18,nan"], "--depth: 'nan' is not a whole number"),
    (["resnet18", "--depth", "18,34.7"], "--depth: '34.7' is not a whole number"),  # not rounded to 34
    (["resnet18", "--width", "0.5,inf"], "--width: 'inf' is not a finite number"),
    (["resnet18", "--width", "0.5,nan"], "--width: 'nan' is not a finite number"),
    (["conv5x5", "--input", "1x192x{14,28}x{same}", "--input", "{1,2}x3"], "one input carries the swept sizes"),
    ([f"{EVIL}:raises_at_width", "--width", "0.5,1", *TINY], "ValueError: no model at width 0.5"),
    ([f"{EVIL}:exits_at_width", "--width", "0.5,1", *TINY], "called os._exit(0); user code cannot end a costlens run"),
], ids=["batch-inf", "batch-nan", "batch-fractions", "batch-twice", "depth-nan", "depth-fraction", "width-inf",
        "width-nan", "two-swept-inputs", "width-factory-raises", "width-factory-exits"])
def test_bad_sweeps_are_refused_before_the_first_point(costlens: Run, work: Path, args: list[str], needle: str) -> None:
    refused_leaving_nothing(costlens("sweep", *args, "--no-save"), needle, work, {})


def test_a_sweep_sends_the_models_prints_to_stderr(costlens: Run, work: Path) -> None:
    done = costlens("sweep", f"{EVIL}:prints_at_width", "--width", "0.5,1", *TINY, "--format", "json", "--no-save")
    assert done.rc == 0, done
    assert [p["label"] for p in json.loads(done.stdout)["points"]] == ["width 0.5", "width 1"]
    assert "factory says hello" in done.stderr and "forward says hello" in done.stderr


def test_a_sweep_over_a_2d_input_fits_against_the_size_that_changes(costlens: Run, work: Path) -> None:
    done = costlens("sweep", f"{EVIL}:flat", "--input", "{1,2}x16", "--format", "json", "--no-save")
    assert done.rc == 0, done
    result = json.loads(done.stdout)
    assert result["variable"] == "input size (dim 0)" and [p["x"] for p in result["points"]] == [1.0, 2.0]
    # Linear(16, 8) on n rows: n·16·8 MACs, 128 then 256: exponent 1
    assert [p["totals"]["macs"] for p in result["points"]] == [128, 256]
    assert result["fits"]["macs"]["exponent"] == pytest.approx(1.0)


@pytest.mark.parametrize(("command", "extra"), [
    (["device", "--peak-flops", "100G", "--bandwidth", "10G"], []), (["sweep", "conv5x5", "--batch", "1,2"], ["--no-save"]),
])
def test_every_command_takes_debug_after_its_name(costlens: Run, work: Path, command: list[str], extra: list[str]) -> None:
    done = costlens(*command[:1], "--debug", *command[1:], *extra)
    assert done.rc == 0, done


# Ctrl-C: what was measured is written and the exit is 130 with "interrupted"; a saved profile that
# was interrupted in its own run does not make this run exit 130. Models raise KeyboardInterrupt
# themselves (what Ctrl-C raises) at a known moment, or sleep to be sent SIGINT.

def _timing_of(profile: dict[str, Any]) -> list[tuple[int, bool]]:
    return [(b["batch"], b.get("median_ms") is not None) for b in profile["timing"]["batches"]]


def test_ctrl_c_during_the_second_batch_size_of_a_timed_compare(costlens: Run, work: Path) -> None:
    done = costlens("compare", f"{EVIL}:interrupts_at_batch_2", f"{EVIL}:tiny", *TINY, "--batch", "1,2", *TIMED,
                    "--no-layers", "--format", "json")
    assert done.rc == 130, done
    assert done.stderr.strip() == "costlens: interrupted: what was measured before Ctrl-C is in the output"
    first, second = json.loads(done.stdout)["profiles"]
    assert _timing_of(first)[0] == (1, True) and _timing_of(second)[0] == (1, True)
    assert first["timing"]["interrupted"] and (2, True) not in _timing_of(first)


def test_ctrl_c_while_check_times_its_models_is_130_not_a_verdict(costlens: Run, work: Path) -> None:
    before = _budget(work, f"""
        [models]
        cut = {{ import = "{EVIL}:interrupts_on_real_tensors", input = "1x3x8x8" }}
        good = {{ import = "{EVIL}:tiny", input = "1x3x8x8" }}
        rules = ["cut.latency_ms <= 2 * good.latency_ms"]
    """)
    done = costlens("check", "budget.toml", "--junit", "j.xml")
    assert done.rc == 130 and done.stderr.strip() == "costlens: interrupted", done
    assert snapshot(work) == before  # no verdict, no JUnit file


def test_ctrl_c_during_a_timed_sweep_keeps_the_measured_points_and_their_latency(costlens: Run, work: Path) -> None:
    done = costlens("sweep", f"{EVIL}:interrupts_at_batch_2", *STEADY, "--batch", "1,2,4", "--time", "--device", "cpu",
                    "--format", "json", "--no-save")
    assert done.rc == 130, done
    result = json.loads(done.stdout)
    assert result["interrupted"] and [p["label"] for p in result["points"]] == ["batch 1"]  # batch 2 was not measured
    assert result["points"][0]["totals"]["latency_ms"] > 0 and "latency_ms" in result["fits"]


def test_ctrl_c_while_a_training_step_is_timed_keeps_the_count(costlens: Run, work: Path) -> None:
    done = costlens("profile", f"{EVIL}:sleeps_when_trained", *TINY, "--train", "--time", "--device", "cpu",
                    "--save", "step.json", during=_signal_once_asleep(work, signal.SIGINT))
    assert done.rc == 130, done
    assert done.stderr.strip().splitlines()[-1] == "costlens: interrupted: what was measured before Ctrl-C is in the output"
    assert "Ctrl-C came before the step was timed; the counts above stand" in done.stdout
    saved = json.loads((work / "step.json").read_text())
    # conv 3->4, 3x3 on 8x8: 6·6·4 outputs × 27 = 3,888 MACs forward; its weight gradient takes as many
    assert saved["totals"]["macs"] == 3_888 and saved["totals"]["backward_macs"] == 3_888
    assert saved["timing"]["interrupted"] is True and saved["timing"]["step"] is None
    assert_complete(work)


def test_a_saved_profile_that_was_interrupted_does_not_make_compare_exit_130(costlens: Run, work: Path,
                                                                           saved: dict[str, Any]) -> None:
    cut = {"batches": [{"batch": 1, "error": None}], "device": None, "dtype": "float32", "threads": 2,
           "interrupted": True}
    (work / "cut.json").write_text(_mutated(saved, _set(("timing",), cut)))
    done = costlens("compare", "cut.json", "lenet5", "--no-save")
    assert done.rc == 0 and done.stderr == "", done


# Silent wrong output, now refused with one line: options of a mode given without it, freezes that
# freeze nothing, rules check cannot measure.

@pytest.mark.parametrize(("args", "needle"), [
    (["lenet5", "--optimizer", "adam"], "--optimizer needs --train"),
    (["lenet5", "--device-file", "broken.json"], "--device-file needs --time"),
    (["lenet5", "--peak-flops", "1T"], "--peak-flops needs --time"),
    (["lenet5", "--layer-time", "0.2"], "--layer-time needs --time"),
    (["lenet5", "--compile"], "--compile needs --time"),
    (["lenet5", "--threads", "1"], "--threads needs --time"),
    (["lenet5", "--ensemble", "2", "--batch", "1,4", "--time"], "--ensemble and --batch with several sizes"),
    (["lenet5", "--batch", "4,4", "--time"], "--batch: 4 is listed twice"),
    (["lenet5", "--freeze-until", ""], "--freeze-until: expected a module path like 'layer3', got ''"),
    ([f"{EVIL}:named_activations", *TINY, "--freeze", "act*"],
     "--freeze: 'act*' matches only modules without parameters (act1, act2): nothing to freeze"),
    ([f"{EVIL}:named_activations", *TINY, "--freeze-until", "conv1"],
     "--freeze-until: no module with parameters runs before 'conv1': nothing to freeze"),
    ([f"{EVIL}:no_parameters", *TINY, "--train", "--time"], "has no parameters: a training step would update nothing"),
], ids=["optimizer", "device-file", "peak-flops", "layer-time", "compile", "threads", "ensemble-batches",
        "batch-twice", "freeze-until-empty", "freeze-parameterless", "freeze-until-first", "train-no-parameters"])
def test_options_that_would_do_nothing_are_refused(costlens: Run, work: Path, args: list[str], needle: str) -> None:
    (work / "broken.json").write_text("{")
    before = snapshot(work)
    refused_leaving_nothing(costlens("profile", *args), needle, work, before)


@pytest.mark.parametrize(("rule", "needle"), [
    ("a.time_ms <= 2 * b.time_ms", "'time_ms' is not measured by check"),
    ("a.predicted_ms <= 2 * b.predicted_ms", "'predicted_ms' is not measured by check"),
    ("a.step_ms <= 2 * b.step_ms", "'step_ms' is not measured by check"),
    ("a:conv.latency_ms <= 2 * b:conv.latency_ms", "'a:conv.latency_ms': check times whole models, not blocks"),
    ("a.time_ms <= 5", "'time_ms' is measured, and absolute measurements"),
])
def test_budget_rules_check_cannot_measure_are_refused_before_any_work(costlens: Run, work: Path, rule: str,
                                                                       needle: str) -> None:
    before = _budget(work, f'[models]\na = {{ zoo = "conv5x5" }}\nb = {{ zoo = "conv5x5" }}\nrules = ["{rule}"]\n')
    refused_leaving_nothing(costlens("check", "budget.toml"), f"budget.toml:4: {needle}", work, before)


def test_every_command_declares_debug() -> None:
    """The README: every command takes --debug after its name (CostlensGroup reads it from argv)."""
    from costlens.cli import cli

    missing = [name for name, command in cli.commands.items() if "debug" not in {p.name for p in command.params}]
    assert missing == []
