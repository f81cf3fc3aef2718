"""The ``costlens`` command: thin commands that parse options and call the library.

Nothing here imports torch at module level, so ``costlens --help`` and
``costlens --version`` answer at once. Every option is defined once, below, and
reused by the commands that take it.
"""

from __future__ import annotations

import sys
import traceback
import warnings
from pathlib import Path
from typing import Any

import click

from costlens import __version__
from costlens.errors import CostlensError, InputShapeError
from costlens.units import parse_shape

REPORTS = Path("reports")
FORMATS = ("table", "csv", "json", "markdown", "html")
DTYPES = ("float32", "float16", "bfloat16")  # costlens.inputs.FLOAT_DTYPES, without importing torch here


def _one_line(text: str) -> str:
    from costlens.sanitize import terminal_text

    return terminal_text(text)


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: Any = None, line: str | None = None) -> None:
    """Warnings reach the terminal as one line each, like errors."""
    click.echo(f"costlens: warning: {message}", err=True)


class CostlensGroup(click.Group):
    """A click group whose errors are one line on stderr: exit 2 for bad input."""

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
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
            click.echo(f"costlens: error: {_one_line(str(error))}", err=True)
            code = error.exit_code
        except Exception as error:  # a bug of ours: still one line, unless --debug
            if "--debug" in argv:
                raise
            first = str(error).strip().splitlines()[0] if str(error).strip() else ""
            click.echo(f"costlens: internal error: {type(error).__name__}: {_one_line(first)} (rerun with --debug)",
                       err=True)
            code = 3
        except SystemExit as error:  # no costlens code exits: click after a closed stdout, or user code
            import errno

            if "--debug" in argv:
                traceback.print_exc()
            # click answers EPIPE on stdout by wrapping both streams in its _PacifyFlushWrapper and exiting 1
            pacified = "PacifyFlushWrapper" in type(sys.stdout).__name__
            if pacified or (isinstance(error.__context__, OSError) and error.__context__.errno == errno.EPIPE):
                reason = "cannot write to standard output: the reader closed the pipe"
            else:
                reason = f"the model's code called sys.exit({error.code!r}); user code cannot end a costlens run"
            click.echo(f"costlens: error: {_one_line(reason)}", err=True)
            code = 2
        except KeyboardInterrupt:  # outside click's own handler (it turns Ctrl-C into Abort)
            click.echo("costlens: interrupted", err=True)
            code = 130
        except BaseException as error:  # a user's BaseException subclass that no layer contained
            if "--debug" in argv:
                traceback.print_exc()
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            click.echo(f"costlens: error: the model's code raised {type(error).__name__}: {_one_line(first)}; "
                       "user code cannot end a costlens run", err=True)
            code = 2
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
def _batches_option(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, ...] | None:
    if value is None:
        return None
    try:
        batches = tuple(int(part) for part in value.split(","))
    except ValueError:
        raise click.BadParameter(f"'{value}' is not a batch size or a list like 1,8,32") from None
    if any(b < 1 or b > 2**31 for b in batches):
        raise click.BadParameter(f"batch sizes must be between 1 and {2**31}, got {value}")
    return batches


batch_option = click.option("--batch", callback=_batches_option, metavar="N[,N...]",
                            help="Batch size (replaces the first input size); with --time, a list: each is timed.")
depth_option = click.option("--depth", type=click.IntRange(min=0), default=1, show_default=True,
                            help="Deepest module level shown in tables (0: totals only).")
format_option = click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
                             help="Output format.")
output_option = click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the output here instead of stdout.")
save_option = click.option("--save", type=click.Path(dir_okay=False),
                           help="Where to save the profile JSON (default: reports/NAME.json).")
device_option = click.option("--device", type=click.Choice(("meta", "auto", "cpu", "cuda")), default=None,
                             help="Where to count (default meta: no weights, no arithmetic) or, with --time, where to time "
                                  "(default auto: cuda when available, else cpu).")


def _timing_options(func: Any) -> Any:
    """The options of measured time, shared by profile and compare."""
    options = [
        click.option("--time", "time_it", is_flag=True, help="Also measure latency, per-layer time and the roofline."),
        click.option("--compile", "compile_it", is_flag=True, help="With --time: time the torch.compile'd model."),
        click.option("--channels-last", is_flag=True, help="With --time: channels-last memory format."),
        click.option("--layer-time", type=click.FloatRange(min=0.001, max=60), default=0.05, show_default=True,
                     help="With --time: seconds of runs per distinct layer."),
        click.option("--no-layers", is_flag=True, help="With --time: end-to-end time only."),
        *_device_override_options(),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _human_option(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    from costlens.units import parse_human

    if value is None:
        return None
    try:
        number = float(parse_human(value))
    except (ValueError, OverflowError):
        raise click.BadParameter(f"'{value}' is not a number (write 989T or 3.35e12)") from None
    if not 0 < number < 1e21:
        raise click.BadParameter(f"'{value}' must be positive and finite")
    return number


def _device_override_options() -> list[Any]:
    return [
        click.option("--peak-flops", callback=_human_option, metavar="FLOP/s",
                     help="Use this peak instead of calibrating (e.g. 989T)."),
        click.option("--bandwidth", callback=_human_option, metavar="BYTES/s",
                     help="Use this memory bandwidth instead of calibrating (e.g. 3.35T)."),
        click.option("--device-file", type=click.Path(dir_okay=False), metavar="JSON",
                     help="Describe the device with a JSON file (as `costlens device --format json` writes)."),
    ]


def _device_overrides(func: Any) -> Any:
    for option in reversed(_device_override_options()):
        func = option(func)
    return func


def _timing(time_it: bool, device: str | None, batch: tuple[int, ...] | None, **options: Any) -> Any:
    """The TimingOptions of a command line, or False without --time."""
    if not time_it:
        if batch is not None and len(batch) > 1:
            raise click.UsageError("a list of batch sizes needs --time (each size is timed)")
        if options.get("compile_it") or options.get("channels_last"):
            raise click.UsageError("--compile and --channels-last need --time")
        return False
    if device == "meta":
        raise click.UsageError("--time needs a real device: --device auto, cpu or cuda (meta has no arithmetic)")
    from costlens.timing.measure import TimingOptions

    return TimingOptions(device=device or "auto", batches=batch or (), compile=options["compile_it"],
                         channels_last=options["channels_last"], layers=not options["no_layers"],
                         layer_time=options["layer_time"], peak_flops=options["peak_flops"],
                         bandwidth=options["bandwidth"], device_file=options["device_file"])
plotlyjs_option = click.option(
    "--plotlyjs", type=click.Path(file_okay=False), metavar="DIRECTORY",
    help="Write one shared plotly.min.js into DIRECTORY and link it, instead of embedding it in each page.")
dtype_option = click.option("--dtype", type=click.Choice(DTYPES), default="float32",
                            show_default=True, help="Data type of inputs and weights.")


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
def list_models() -> None:
    """The zoo: each model's default input, params, MACs and citation."""
    from costlens.api import profile
    from costlens.report.profile_text import zoo_table
    from costlens.zoo import entry, names

    click.echo(zoo_table([(entry(name), profile(name)) for name in names()]), nl=False)


@cli.command("profile")
@click.argument("name")
@input_option
@batch_option
@depth_option
@format_option
@output_option
@save_option
@plotlyjs_option
@device_option
@dtype_option
@click.option("--train", is_flag=True, help="Trace the forward pass in training mode (batch statistics, dropout).")
@click.option("--crosscheck", is_flag=True, help="Also count with fvcore (real CPU tensors) and compare.")
@_timing_options
def profile_command(name: str, input_shape: tuple[int, ...] | None, batch: tuple[int, ...] | None, depth: int,
                    fmt: str, output: str | None, save: str | None, plotlyjs: str | None, device: str | None,
                    dtype: str, train: bool, crosscheck: bool, time_it: bool, **timing_flags: Any) -> int:
    """Per-layer cost of NAME (a zoo name or pkg.module:factory).

    Saves reports/NAME.json and the page reports/NAME.html (or -o with --format html).
    """
    from costlens.api import _profile
    from costlens.files import report_stem, write_atomic
    from costlens.report import html
    from costlens.report import profile_text as text

    timing = _timing(time_it, device, batch, **timing_flags)
    if timing:
        from costlens.api import timed

        result = timed([name], input_shape, batch=batch, device=timing.device, dtype=dtype, options=timing,
                       argument="--input")[0]
    else:
        result = _profile(name, input_shape, batch=batch[0] if batch else None, device=device or "meta", dtype=dtype,
                          train=train, formulas=None, argument="--input")
    stem = report_stem(result.model)
    saved = write_atomic(save or REPORTS / f"{stem}.json", result.to_json())
    page = html.write_page(_page_path(fmt, output, stem), lambda src: html.profile_page(result, src), plotlyjs)
    renderers = {
        "table": lambda: text.table(result, depth),
        "markdown": lambda: text.markdown(result, depth),
        "csv": lambda: text.csv(result),
        "json": result.to_json,
    }
    if fmt != "html":
        _emit(renderers[fmt](), output)
    click.echo(f"saved {saved} and {page}", err=True)
    if crosscheck:
        return _crosscheck(name, result.input_shape)
    return _interrupted([result])


@cli.command("compare")
@click.argument("models", nargs=-1, required=True)
@input_option
@batch_option
@click.option("--depth", type=click.IntRange(min=1), default=None,
              help="Deepest module level to align (default: the first level where 3 blocks carry MACs).")
@format_option
@output_option
@plotlyjs_option
@device_option
@dtype_option
@_timing_options
def compare_command(models: tuple[str, ...], input_shape: tuple[int, ...] | None, batch: tuple[int, ...] | None,
                    depth: int | None, fmt: str, output: str | None, plotlyjs: str | None, device: str | None, dtype: str,
                    time_it: bool, **timing_flags: Any) -> int:
    """Compare MODELS (zoo names, import paths or saved .json profiles), the first as baseline.

    Prints totals and matched blocks with ratios; writes reports/compare-A-vs-B.html.
    """
    if len(models) < 2:
        raise click.UsageError("compare needs at least two models")
    from costlens.api import obtain
    from costlens.comparison import align
    from costlens.files import report_stem
    from costlens.report import comparison_text as text
    from costlens.report import html

    timing = _timing(time_it, device, batch, **timing_flags)
    if timing:
        from costlens.api import timed_or_read

        profiles = timed_or_read(models, input_shape, batch=batch, device=timing.device, dtype=dtype, options=timing,
                                 argument="--input")
    else:
        profiles = [obtain(m, input_shape, batch=batch[0] if batch else None, device=device or "meta", dtype=dtype,
                           argument="--input") for m in models]
    comparison = align(profiles, depth=depth)
    stem = "compare-" + "-vs-".join(report_stem(p.model) for p in profiles)
    page = html.write_page(_page_path(fmt, output, stem), lambda src: html.comparison_page(comparison, src), plotlyjs)
    renderers = {
        "table": lambda: text.comparison_table(comparison),
        "markdown": lambda: text.comparison_markdown(comparison),
        "csv": lambda: text.comparison_csv(comparison),
        "json": comparison.to_json,
    }
    if fmt != "html":
        _emit(renderers[fmt](), output)
    click.echo(f"saved {page}", err=True)
    return _interrupted(profiles)


def _interrupted(profiles: list[Any]) -> int:
    """130 when Ctrl-C cut a measurement short (what was measured is written), else 0."""
    if any((p.timing or {}).get("interrupted") for p in profiles):
        click.echo("costlens: interrupted: what was measured before Ctrl-C is in the output", err=True)
        return 130
    return 0


@cli.command("device")
@click.option("--device", type=click.Choice(("auto", "cpu", "cuda")), default="auto", show_default=True,
              help="The device to describe.")
@click.option("--recalibrate", is_flag=True, help="Measure again instead of using the cached calibration.")
@click.option("--format", "fmt", type=click.Choice(("table", "json")), default="table", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the output here instead of stdout.")
@_device_overrides
def device_command(device: str, recalibrate: bool, fmt: str, output: str | None, peak_flops: float | None,
                   bandwidth: float | None, device_file: str | None) -> int:
    """The device's name, calibrated peak FLOP/s per dtype and memory bandwidth (cached per machine)."""
    import json

    from costlens.report.timing_text import device_table
    from costlens.timing.device import device_facts, resolve_device

    facts = device_facts(resolve_device(device), recalibrate=recalibrate, file=device_file, peak_flops=peak_flops,
                         bandwidth=bandwidth, progress=lambda step: click.echo(f"calibrating: {step}", err=True))
    _emit(json.dumps(facts.to_dict(), indent=1) if fmt == "json" else device_table(facts), output)
    return 0


@cli.command("check")
@click.argument("budget_file", default="reports/budgets.toml", metavar="[FILE]")
@click.option("--junit", type=click.Path(dir_okay=False), help="Also write the verdicts as JUnit XML here.")
def check_command(budget_file: str, junit: str | None) -> int:
    """Check cost budgets (default reports/budgets.toml): exit 0 all hold, 1 one fails, 2 bad file."""
    import os

    from costlens.budget import check, load_budget
    from costlens.errors import OutputError
    from costlens.files import append_text, write_atomic, write_output
    from costlens.report import budget_text as text
    from costlens.report import junit as junit_report

    budget = load_budget(budget_file)
    verdicts = check(budget)
    verdict = 0 if all(v.passed for v in verdicts) else 1
    try:
        write_output(None, text.budget_table(verdicts, budget_file))
    except OutputError as error:  # the verdict stands: it is the exit code, and the JUnit file below
        click.echo(f"costlens: warning: the table is not shown: {_one_line(str(error))}", err=True)
    unwritten = []
    if junit:
        try:
            click.echo(f"wrote {write_atomic(junit, junit_report.junit_xml(verdicts))}", err=True)
        except OutputError as error:
            unwritten.append(str(error))
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        try:
            append_text(summary, text.budget_markdown(verdicts, budget_file))
        except OutputError as error:
            unwritten.append(f"GITHUB_STEP_SUMMARY: {error}")
    for message in unwritten:
        click.echo(f"costlens: error: {_one_line(message)}", err=True)
    # a failed rule is the news (exit 1); an output that could not be written turns a pass into 2
    return verdict or (2 if unwritten else 0)


def _page_path(fmt: str, output: str | None, stem: str) -> str | Path:
    """Where the HTML page goes: ``-o`` when the format is html, else reports/STEM.html."""
    return output if (fmt == "html" and output) else REPORTS / f"{stem}.html"


def _emit(rendered: str, output: str | None) -> None:
    """Print ``rendered``, or write it atomically to ``output``."""
    from costlens.files import write_atomic

    if output:
        click.echo(f"wrote {write_atomic(output, rendered)}", err=True)
    else:
        click.echo(rendered, nl=not rendered.endswith("\n"))


def _crosscheck(name: str, shape: list[int]) -> int:
    """fvcore's second opinion; an input too large for real CPU tensors is refused (one line, exit 2)
    by the estimate in costlens/crosscheck.py before anything is allocated."""
    from costlens.crosscheck import crosscheck

    check = crosscheck(name, tuple(shape))
    click.echo(check.summary())
    return 0 if check.agrees else 1


def main() -> None:
    """Console-script entry point."""
    cli.main()
