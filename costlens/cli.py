"""The ``costlens`` command: thin commands that parse options and call the library.

Nothing here imports torch at module level, so ``costlens --help`` and
``costlens --version`` answer at once. Every option is defined once, below, and
reused by the commands that take it.
"""

from __future__ import annotations

import contextlib
import sys
import traceback
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import click

from costlens import __version__
from costlens.errors import CostlensError, InputShapeError
from costlens.units import parse_shape

REPORTS = Path("reports")
LONGEST_STEM = 120  # characters of a report's file name before .json/.html; file systems allow 255 bytes
PROGRESS_DELAY = 1.0  # seconds of work before a progress bar appears
FORMATS = ("table", "csv", "json", "markdown", "html")
DTYPES = ("float32", "float16", "bfloat16")  # costlens.inputs.FLOAT_DTYPES, without importing torch here


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: Any = None, line: str | None = None) -> None:
    """Warnings reach the terminal as one line each, like errors."""
    click.echo(f"costlens: warning: {message}", err=True)


class CostlensGroup(click.Group):
    """A click group whose errors are one line on stderr: exit 2 for bad input."""

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        if not argv:
            argv = ["--help"]  # bare `costlens`: the help, exit 0
        warnings.showwarning = _show_warning
        try:
            result = super().main(argv, prog_name or "costlens", complete_var, standalone_mode=False, **extra)
            code = result if isinstance(result, int) else 0
        except click.exceptions.Abort:
            click.echo("costlens: interrupted", err=True)
            code = 130
        except click.ClickException as error:
            click.echo(f"costlens: error: {error.format_message()}", err=True)
            code = 2 if isinstance(error, click.UsageError) else error.exit_code
        except CostlensError as error:
            if "--debug" in argv:
                traceback.print_exc()
            click.echo(f"costlens: error: {error}", err=True)
            code = error.exit_code
        except Exception as error:  # a bug of ours: still one line, unless --debug
            if "--debug" in argv:
                raise
            first = str(error).strip().splitlines()[0] if str(error).strip() else ""
            click.echo(f"costlens: internal error: {type(error).__name__}: {first} (rerun with --debug)", err=True)
            code = 3
        if standalone_mode:
            sys.exit(code)
        return code


def _shape_option(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, ...] | None:
    if value is None:
        return None
    try:
        return parse_shape(value)
    except InputShapeError as error:
        raise click.BadParameter(str(error)) from None


# --- the option catalog ----------------------------------------------------------

input_option = click.option(
    "--input", "input_shape", callback=_shape_option, metavar="NxCxHxW",
    help="Input shape, e.g. 1x3x224x224 (default: the model's own).")
batch_option = click.option("--batch", type=click.IntRange(min=1), help="Batch size (replaces the first input size).")
depth_option = click.option(
    "--depth", type=click.IntRange(min=0), default=None,
    help="Deepest module level in tables (0: totals only; default: the first level where 3 blocks carry MACs, "
         "without calls that have neither MACs nor params). CSV: every call unless given.")
format_option = click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
                             help="Output format.")
output_option = click.option("-o", "--output", type=click.Path(dir_okay=False, allow_dash=True), metavar="PATH",
                             help="Write the output here instead of stdout ('-': stdout).")
save_option = click.option(
    "--save", type=click.Path(), metavar="DIR|FILE.json",
    help="Also save the profile JSON and its page: into DIR, or as FILE.json and FILE.html "
         "(default: reports/ when the table goes to stdout, nothing otherwise).")
no_save_option = click.option("--no-save", is_flag=True, help="Save nothing: only the output asked for.")
device_option = click.option("--device", type=click.Choice(("meta", "cpu", "cuda")), default="meta", show_default=True,
                             help="Device to trace on: meta counts without weights or arithmetic.")
plotlyjs_option = click.option(
    "--plotlyjs", type=click.Path(file_okay=False), metavar="DIRECTORY",
    help="Write one shared plotly.min.js into DIRECTORY and link it, instead of embedding it in each page.")
dtype_option = click.option("--dtype", type=click.Choice(DTYPES), default="float32",
                            show_default=True, help="Data type of inputs and weights.")
# Accepted after the subcommand too, as error messages suggest; CostlensGroup.main reads it from argv.
debug_option = click.option("--debug", is_flag=True, expose_value=False, help="Show Python tracebacks for errors.")


@click.group(cls=CostlensGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="costlens")
@click.option("--debug", is_flag=True, help="Show Python tracebacks for errors.")
def cli(debug: bool) -> None:
    """Where the cost of a convolutional network goes, layer by layer.

    \b
    Examples:
      costlens profile inception
      costlens profile vgg16 --depth 2 --format markdown
      costlens profile mypkg.models:build_net --input 1x3x64x64
      costlens list
    """


@cli.command("list")
@debug_option
def list_models() -> None:
    """The zoo: each model's default input, params, MACs and source."""
    from costlens.api import profile
    from costlens.report.profile_text import zoo_table
    from costlens.zoo import entry, names

    rows = [(entry(name), profile(name)) for name in _progress(names(), "profiling the zoo")]
    click.echo(zoo_table(rows), nl=False)


@cli.command("profile")
@click.argument("name")
@input_option
@batch_option
@depth_option
@format_option
@output_option
@save_option
@no_save_option
@plotlyjs_option
@device_option
@dtype_option
@click.option("--train", is_flag=True, help="Trace the forward pass in training mode (batch statistics, dropout).")
@click.option("--crosscheck", is_flag=True, help="Also count with fvcore (real CPU tensors) and compare.")
@debug_option
def profile_command(name: str, input_shape: tuple[int, ...] | None, batch: int | None, depth: int | None,
                    fmt: str, output: str | None, save: str | None, no_save: bool, plotlyjs: str | None, device: str,
                    dtype: str, train: bool, crosscheck: bool) -> int:
    """Per-layer cost of NAME (a zoo name or pkg.module:factory).

    \b
    The output goes to stdout, or to -o PATH. The table also saves the profile and
    its page as reports/NAME.json and reports/NAME.html (NAME-1x3x448x448... when the
    input is not the model's default); --save chooses where, --no-save saves nothing.
    --format html writes the page to -o PATH, or to reports/NAME.html.
    """
    from costlens.api import _profile
    from costlens.report import html
    from costlens.report import profile_text as text

    with _model_output_to_stderr(), _input_hint(name, input_shape):
        result = _profile(name, input_shape, batch=batch, device=device, dtype=dtype, train=train, formulas=None,
                          argument="--input")
    stem = _profile_stem(name, result.input_shape, dtype, train)
    json_path, page_path = _report_paths(save, stem, ".json")

    def render_page(src: str | None) -> str:
        return html.profile_page(result, src)

    renderers = {
        "table": lambda: text.table(result, depth),
        "markdown": lambda: text.markdown(result, depth),
        "csv": lambda: text.csv(result, depth),
        "json": result.to_json,
    }
    if fmt == "html":
        page_output = output or str(page_path)
        _emit_page(render_page, page_output, plotlyjs)
    else:
        page_output = None
        _emit(renderers[fmt](), output)
    code = 0
    if _saving(fmt, output, save, no_save):
        writes: list[tuple[Path, Callable[[Path], Path]]] = [(json_path, lambda p: _write(p, result.to_json()))]
        if page_output is None or Path(page_output) != page_path:
            writes.append((page_path, lambda p: html.write_page(p, render_page, plotlyjs)))
        code = _save(writes, explicit=save is not None)
    if crosscheck:
        code = max(code, _crosscheck(name, result.input_shape))
    return code


@cli.command("compare")
@click.argument("models", nargs=-1, required=True)
@input_option
@batch_option
@click.option("--depth", type=click.IntRange(min=1), default=None,
              help="Deepest module level to align (default: the first level where 3 blocks carry MACs).")
@format_option
@output_option
@click.option("--save", type=click.Path(), metavar="DIR|FILE.html",
              help="Also save the comparison page: into DIR, or as FILE.html "
                   "(default: reports/ when the table goes to stdout, nothing otherwise).")
@no_save_option
@plotlyjs_option
@device_option
@dtype_option
@debug_option
def compare_command(models: tuple[str, ...], input_shape: tuple[int, ...] | None, batch: int | None, depth: int | None,
                    fmt: str, output: str | None, save: str | None, no_save: bool, plotlyjs: str | None, device: str,
                    dtype: str) -> int:
    """Compare MODELS (zoo names, import paths or saved .json profiles), the first as baseline.

    \b
    Prints totals and matched blocks with ratios (or -o PATH). The table also saves
    the page reports/compare-A-vs-B.html; --save chooses where, --no-save saves nothing.
    --format html writes the page to -o PATH, or to reports/compare-A-vs-B.html.
    """
    if len(models) < 2:
        raise click.UsageError("compare needs at least two models")
    from costlens.api import obtain
    from costlens.comparison import align
    from costlens.report import comparison_text as text
    from costlens.report import html

    with _model_output_to_stderr():
        profiles = [obtain(m, input_shape, batch=batch, device=device, dtype=dtype, argument="--input")
                    for m in _progress(models, "profiling")]
    comparison = align(profiles, depth=depth)
    shape = profiles[0].input_shape if (input_shape or batch) else None
    _, page_path = _report_paths(save, _compare_stem([p.model for p in profiles], shape, dtype), ".html")

    def render_page(src: str | None) -> str:
        return html.comparison_page(comparison, src)

    renderers = {
        "table": lambda: text.comparison_table(comparison),
        "markdown": lambda: text.comparison_markdown(comparison),
        "csv": lambda: text.comparison_csv(comparison),
        "json": comparison.to_json,
    }
    if fmt == "html":
        _emit_page(render_page, output or str(page_path), plotlyjs)
        return 0
    _emit(renderers[fmt](), output)
    if _saving(fmt, output, save, no_save):
        return _save([(page_path, lambda p: html.write_page(p, render_page, plotlyjs))], explicit=save is not None)
    return 0


@cli.command("check")
@click.argument("budget_file", default="reports/budgets.toml", metavar="[FILE]")
@click.option("--junit", type=click.Path(dir_okay=False), help="Also write the verdicts as JUnit XML here.")
@debug_option
def check_command(budget_file: str, junit: str | None) -> int:
    """Check cost budgets (default reports/budgets.toml): exit 0 all hold, 1 one fails, 2 bad file."""
    import os

    from costlens.budget import check, load_budget
    from costlens.files import write_atomic
    from costlens.report import budget_text as text
    from costlens.report import junit as junit_report

    budget = load_budget(budget_file)
    verdicts = check(budget)
    click.echo(text.budget_table(verdicts, budget_file), nl=False)
    if junit:
        click.echo(f"wrote {write_atomic(junit, junit_report.junit_xml(verdicts))}", err=True)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as stream:
            stream.write(text.budget_markdown(verdicts, budget_file))
    return 0 if all(v.passed for v in verdicts) else 1


# --- where output goes -----------------------------------------------------------
# The output asked for (the table, --format X) goes to stdout or -o first; the reports
# saved beside it come after, so a report that cannot be written never costs the output.

Item = TypeVar("Item")


def _progress(items: Iterable[Item], what: str) -> Iterable[Item]:
    """``items``, with a progress bar on stderr when it is a terminal and the work takes over a second."""
    from tqdm import tqdm

    listed = list(items)
    return tqdm(listed, desc=what, unit="model", file=sys.stderr, disable=not sys.stderr.isatty(),
                delay=PROGRESS_DELAY, leave=False)


@contextlib.contextmanager
def _model_output_to_stderr() -> Iterator[None]:
    """What a user's factory or forward prints goes to stderr, so stdout holds only costlens's output."""
    with contextlib.redirect_stdout(sys.stderr):
        yield


@contextlib.contextmanager
def _input_hint(name: str, input_shape: tuple[int, ...] | None) -> Iterator[None]:
    """A model that fails on the user's --input is told which input the zoo model takes."""
    from costlens.errors import ModelError

    try:
        yield
    except ModelError as error:
        default = _default_input(name)
        if input_shape is None or default is None or tuple(default) == tuple(input_shape):
            raise
        from costlens.units import format_shape

        hint = f"; {name} takes {format_shape(default)} by default"
        if len(default) == len(input_shape) >= 2 and default[1] != input_shape[1]:
            hint += f" ({default[1]} input channels; --input {format_shape(input_shape)} has {input_shape[1]})"
        raise ModelError(f"{error}{hint}") from error


def _default_input(name: str) -> tuple[int, ...] | None:
    """The zoo's default input of ``name``; None for an import path or an unknown name."""
    from costlens.errors import CostlensError
    from costlens.models import is_import_path, resolve

    if is_import_path(name):
        return None
    try:
        return resolve(name).input
    except CostlensError:
        return None


def _suffix(shape: list[int] | tuple[int, ...] | None, dtype: str, train: bool = False) -> str:
    """'-8x3x224x224', '-float16', '-train': what tells runs of one model apart."""
    from costlens.units import format_shape

    parts = [format_shape(shape)] if shape else []
    parts += [dtype] if dtype != "float32" else []
    parts += ["train"] if train else []
    return "".join(f"-{part}" for part in parts)


def _profile_stem(name: str, shape: list[int], dtype: str, train: bool) -> str:
    """reports/STEM.json: the model, and its input when it is not the model's default."""
    from costlens.files import report_stem

    default = _default_input(name)
    differs = default is None or tuple(default) != tuple(shape)
    return _fit(report_stem(name) + _suffix(shape if differs else None, dtype, train))


def _compare_stem(models: list[str], shape: list[int] | None, dtype: str) -> str:
    """'compare-A-vs-B'; for many models, 'compare-A-and-12-more-<hash>' so the name fits the file system."""
    import hashlib

    from costlens.files import report_stem

    stems = [report_stem(m) for m in models]
    suffix = _suffix(shape, dtype)
    joined = "compare-" + "-vs-".join(stems) + suffix
    if len(joined) <= LONGEST_STEM:
        return joined
    digest = hashlib.sha256(joined.encode()).hexdigest()[:10]
    return _fit(f"compare-{stems[0]}-and-{len(stems) - 1}-more-{digest}{suffix}")


def _fit(stem: str) -> str:
    """A stem no longer than LONGEST_STEM: a long one keeps its start and gains a hash of the whole."""
    if len(stem) <= LONGEST_STEM:
        return stem
    import hashlib

    return f"{stem[:LONGEST_STEM - 11]}-{hashlib.sha256(stem.encode()).hexdigest()[:10]}"


def _report_paths(save: str | None, stem: str, kind: str) -> tuple[Path, Path]:
    """The JSON and page paths: ``--save FILE.json`` (or ``FILE.html``) and its sibling,
    else STEM.json and STEM.html in ``--save DIR`` or in reports/."""
    if save is not None and save.endswith(kind):
        named = Path(save)
        return named.with_suffix(".json"), named.with_suffix(".html")
    directory = Path(save) if save is not None else REPORTS
    return directory / f"{stem}.json", directory / f"{stem}.html"


def _saving(fmt: str, output: str | None, save: str | None, no_save: bool) -> bool:
    """Reports are saved when asked with --save, or by default beside a table printed to stdout."""
    if no_save:
        return False
    return save is not None or (fmt == "table" and output in (None, "-"))


def _write(path: Path, text: str) -> Path:
    from costlens.files import write_atomic

    return write_atomic(path, text)


def _save(writes: list[tuple[Path, Callable[[Path], Path]]], explicit: bool) -> int:
    """Write each report, then say what was saved on stderr. A failure is an error (exit 2)
    when the user asked with --save, else a warning: the output was already delivered."""
    from costlens.errors import CostlensError

    saved: list[str] = []
    failure = None
    for path, write in writes:
        try:
            saved.append(str(write(path)))
        except CostlensError as error:
            failure = error
            break
    if saved:
        click.echo(f"saved {' and '.join(saved)}", err=True)
    if failure is None:
        return 0
    if explicit:
        click.echo(f"costlens: error: {failure}", err=True)
        return failure.exit_code
    click.echo(f"costlens: warning: reports not saved: {failure} (--save DIR saves elsewhere, --no-save skips this)",
               err=True)
    return 0


def _emit(rendered: str, output: str | None) -> None:
    """Print ``rendered`` (also for ``-o -``), or write it atomically to ``output``."""
    from costlens.files import write_atomic

    if output and output != "-":
        click.echo(f"wrote {write_atomic(output, rendered)}", err=True)
    else:
        click.echo(rendered, nl=not rendered.endswith("\n"))


def _emit_page(render: Callable[[str | None], str], output: str, plotly_dir: str | None) -> None:
    """The page as the output: printed for ``-o -``, else written to ``output``."""
    from costlens.report import html

    if output == "-":
        _emit(render(html.plotly_source(plotly_dir, Path.cwd())), None)
    else:
        click.echo(f"wrote {html.write_page(output, render, plotly_dir)}", err=True)


def _crosscheck(name: str, shape: list[int]) -> int:
    from costlens.crosscheck import crosscheck

    check = crosscheck(name, tuple(shape))
    click.echo(check.summary())
    return 0 if check.agrees else 1


def main() -> None:
    """Console-script entry point."""
    cli.main()
