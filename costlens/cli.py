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
from costlens.units import InputText, parse_input

REPORTS = Path("reports")
LONGEST_STEM = 120  # characters of a report's file name before .json/.html; file systems allow 255 bytes
PROGRESS_DELAY = 1.0  # seconds of work before a progress bar appears
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


def _inputs_option(ctx: click.Context, param: click.Parameter,
                   values: tuple[str, ...]) -> tuple[int, ...] | list[InputText] | None:
    """The --input options: one plain shape as a shape (as it always was), else each one parsed."""
    if not values:
        return None
    try:
        parsed = [parse_input(value) for value in values]
    except InputShapeError as error:
        raise click.BadParameter(str(error)) from None
    if len(parsed) == 1 and parsed[0].name is None and parsed[0].dtype is None and parsed[0].fill is None:
        return parsed[0].shape
    names = [p.name for p in parsed if p.name is not None]
    if len(set(names)) != len(names):
        raise click.BadParameter(f"the input {next(n for n in names if names.count(n) > 1)} is given twice")
    return parsed


def _inputs_of(given: tuple[int, ...] | list[InputText] | None) -> Any:
    """What ``costlens.profile`` takes for the --input options: a shape, or positional and keyword inputs."""
    if given is None or isinstance(given, tuple):
        return given
    from costlens.inputs import from_texts

    return from_texts(given)


# --- the option catalog ----------------------------------------------------------

input_option = click.option(
    "--input", "input_shape", callback=_inputs_option, multiple=True, metavar="[NAME=]SHAPE[:DTYPE[:FILL]]",
    help="An input: a shape like 1x3x224x224 (default: the model's own); repeatable, and named for keyword inputs, "
         "with a dtype and a fill (zeros, ones, rand, randint(N)): --input input_ids=1x128:int64 "
         "--input attention_mask=1x128:int64:ones.")
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
device_option = click.option("--device", type=click.Choice(("meta", "auto", "cpu", "cuda")), default=None,
                             help="Where to count (default meta: no weights, no arithmetic) or, with --time, where to time "
                                  "(default auto: cuda when available, else cpu).")
def _directory_option(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A directory to write into: refused before any work when the path exists and is not one."""
    import os

    if value is not None and os.path.exists(value) and not os.path.isdir(value):
        raise click.BadParameter(f"'{value}' exists and is not a directory")
    return value


plotlyjs_option = click.option(
    "--plotlyjs", type=click.Path(file_okay=False), callback=_directory_option, metavar="DIRECTORY",
    help="Write one shared plotly.min.js into DIRECTORY and link it, instead of embedding it in each page.")
dtype_option = click.option("--dtype", type=click.Choice(DTYPES), default="float32",
                            show_default=True, help="Data type of inputs and weights.")
apply_option = click.option(
    "--apply", "applied", multiple=True, metavar="PATH=ALTERNATIVE",
    help="Rewrite the convolution at PATH with an alternative first (repeatable): bottleneck(16), bottleneck(r=4), "
         "depthwise, grouped(4), factorized or asymmetric. The original model is left as it was.")
strict_option = click.option(
    "--strict", is_flag=True,
    help="On meta, refuse to assume a tensor value the model reads (`if mask.all():`) instead of listing it.")
# Accepted after the subcommand too, as error messages suggest; CostlensGroup.main reads it from argv.
debug_option = click.option("--debug", is_flag=True, expose_value=False, help="Show Python tracebacks for errors.")


def _timing_options(func: Any) -> Any:
    """The options of measured time, shared by profile and compare."""
    options = [
        click.option("--time", "time_it", is_flag=True, help="Also measure latency, per-layer time and the roofline."),
        click.option("--compile", "compile_it", is_flag=True, help="With --time: time the torch.compile'd model."),
        click.option("--channels-last", is_flag=True, help="With --time: channels-last memory format."),
        click.option("--layer-time", type=float, default=None, metavar="SECONDS",
                     help="With --time: seconds of runs per distinct layer (default 0.05)."),
        click.option("--no-layers", is_flag=True, help="With --time: end-to-end time only."),
        click.option("--layer-time-method", type=click.Choice(("replay", "trace", "both")), default=None,
                     help="With --time: per-layer time replaying each leaf alone (default), in place in the real "
                          "forward (kernel time on CUDA, wall time on cpu), or both."),
        click.option("--threads", type=int, default=None, metavar="N",
                     help="With --time: time on N threads (default: torch's, torch.get_num_threads()); every timer "
                          "and the calibration use them."),
        click.option("--cuda-graphs", is_flag=True,
                     help="With --time on CUDA: also time replays of the forward captured once as a CUDA graph."),
        click.option("--latency-time", type=float, default=None, metavar="SECONDS",
                     help="With --time: time each model end to end for at least this long (default 0.5)."),
        click.option("--latency-cap", type=float, default=None, metavar="SECONDS",
                     help="With --time: stop timing a model end to end after this long, even if its interval is "
                          "still wide (default 10)."),
        click.option("--precision", type=float, default=None, metavar="FRACTION",
                     help="With --time: stop once the median's 95%% interval is within this fraction of it "
                          "(default 0.02: ±2%%)."),
        click.option("--recalibrate", is_flag=True,
                     help="With --time: measure the device's peaks again instead of using the cache."),
        *_device_override_options(),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _rate_option(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    """A rate as people write one: 989T, 989t, 3.35e12, 0.4 (``units.parse_rate``)."""
    from costlens.units import parse_rate

    return None if value is None else parse_rate(value, f"--{param.name.replace('_', '-')}" if param.name else "--rate")


def _device_override_options() -> list[Any]:
    return [
        click.option("--peak-flops", callback=_rate_option, metavar="FLOP/s",
                     help="Use this peak instead of calibrating (e.g. 989T)."),
        click.option("--bandwidth", callback=_rate_option, metavar="BYTES/s",
                     help="Use this memory bandwidth instead of calibrating (e.g. 3.35T)."),
        click.option("--device-file", type=click.Path(dir_okay=False), metavar="JSON",
                     help="Describe the device with a JSON file (as `costlens device --format json` writes)."),
    ]


def _device_overrides(func: Any) -> Any:
    for option in reversed(_device_override_options()):
        func = option(func)
    return func


def _request_of(model: str, input_shape: tuple[int, ...] | None, batch: tuple[int, ...] | None, device: str | None,
                dtype: str, time_it: bool, **options: Any) -> Any:
    """The ``Request`` a command line asks for (``costlens/request.py`` checks it, as it checks the API's)."""
    from costlens.request import Front, Request
    from costlens.timing.options import TimingOptions

    named = ("layer_time", "peak_flops", "bandwidth", "device_file", "layer_time_method", "threads", "latency_time",
             "latency_cap", "precision")
    given = {name: options.pop(name, None) for name in named}
    # only the options given: one left out keeps TimingOptions' default, so the request sees it as not given
    timing = TimingOptions(
        device=device or "auto", compile=options.pop("compile_it", False),
        channels_last=options.pop("channels_last", False), layers=not options.pop("no_layers", False),
        cuda_graphs=options.pop("cuda_graphs", False), recalibrate=options.pop("recalibrate", False),
        calibration_progress=_say_calibrating, **{name: value for name, value in given.items() if value is not None})
    return Request(model, _inputs_of(input_shape), batches=batch or (), device=(device or "meta") if not time_it else "meta",
                   dtype=dtype, time=time_it, timing=timing, front=Front.CLI, **options)


def _say_calibrating(step: str) -> None:
    """What a calibration measures, on stderr: a first timed run waits for it."""
    click.echo(f"calibrating: {step}", err=True)


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

    _settle_process()
    rows = [(entry(name), profile(name)) for name in _progress(names(), "profiling the zoo")]
    click.echo(zoo_table(rows), nl=False)


def _settle_process() -> None:
    """What the command line changes in its own process (the Python API leaves its host's alone),
    once torch and costlens are imported:

    - every object the imports made moves out of the garbage collector's reach (``gc.freeze``),
      so collections during a trace do not walk torch's hundreds of thousands of import-time
      objects again and again (about 0.1 s of the first resnet50 profile);
    - user code that calls ``os._exit`` or ``os.abort`` raises instead (``costlens/models.py``);
    - a model run on cpu has the data segment capped at what the machine has free
      (``costlens/memory.py``), so a forward too large fails one allocation, not the machine.
    """
    import gc

    import costlens.run  # noqa: F401  (torch and costlens loaded before the collector is settled)
    from costlens.memory import cap_data_segment_in_this_process
    from costlens.models import contain_hard_exits_in_this_process

    gc.freeze()
    contain_hard_exits_in_this_process()
    cap_data_segment_in_this_process()


def _step_options(func: Any) -> Any:
    """Options of a training step (--train, --optimizer, --freeze, --freeze-until) and of an
    ensemble with multi-crop testing (--ensemble, --crops)."""
    options = [
        click.option("--train", "train_step", is_flag=True,
                     help="Count one training step: forward, the backward ops autograd runs, the optimizer update, "
                          "and the memory of gradients, optimizer state and saved activations."),
        click.option("--optimizer", type=click.Choice(("sgd", "sgd-momentum", "adam")), default=None,
                     help="With --train: the optimizer whose update is counted (default sgd)."),
        click.option("--freeze", multiple=True, metavar="GLOB",
                     help="Freeze the parameters of modules whose path matches (e.g. 'features.*'; repeatable); "
                          "implies --train."),
        click.option("--freeze-until", metavar="PATH",
                     help="Freeze everything that runs before module PATH; implies --train."),
        click.option("--ensemble", metavar="N|A,B,C",
                     help="Cost of an ensemble: N copies of NAME, or these models, averaged."),
        click.option("--crops", type=click.IntRange(min=1, max=1000), default=None,
                     help="Multi-crop testing: each image as this many crops (10: corners, centre and mirrors)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


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
@click.option("--train-mode", "train", is_flag=True,
              help="Trace the forward pass only, in training mode (batch statistics, dropout).")
@click.option("--crosscheck", is_flag=True, help="Also count with fvcore (real CPU tensors) and compare.")
@apply_option
@strict_option
@_timing_options
@_step_options
@debug_option
def profile_command(name: str, input_shape: tuple[int, ...] | None, batch: tuple[int, ...] | None, depth: int | None,
                    fmt: str, output: str | None, save: str | None, no_save: bool, plotlyjs: str | None,
                    device: str | None, dtype: str, train: bool, crosscheck: bool, applied: tuple[str, ...],
                    strict: bool, time_it: bool, **flags: Any) -> int:
    """Per-layer cost of NAME (a zoo name or pkg.module:factory).

    \b
    The output goes to stdout, or to -o PATH. The table also saves the profile and
    its page as reports/NAME.json and reports/NAME.html (NAME-1x3x448x448... when the
    input is not the model's default); --save chooses where, --no-save saves nothing.
    --format html writes the page to -o PATH, or to reports/NAME.html.
    """
    from costlens.report import html
    from costlens.report import profile_text as text

    _settle_process()
    request = _request_of(name, input_shape, batch, device, dtype, time_it, train_mode=train, apply=applied,
                          strict=strict, **_step_flags(flags), **flags)
    with _model_output_to_stderr(), _input_hint(name, input_shape):
        result, summary = _profile_and_summary(request)
    if request.grouped:  # its name says members and crops; the input only when the user chose one
        from costlens.files import report_stem

        stem = _fit(report_stem(result.model) + _suffix(result.input_shape if input_shape or batch else None, dtype))
    else:
        stem = _profile_stem(name, result.input_shape, dtype, train, result.inputs) \
            + (_step_suffix(request) if request.step else "") + _apply_suffix(applied)
    check = None
    if crosscheck:  # refused with its figure before anything is written; its findings go into JSON and page
        from dataclasses import replace

        from costlens.crosscheck import crosscheck as second_opinion

        check = second_opinion(name, tuple(result.input_shape))
        result = replace(result, crosscheck=check.to_dict())
    renderers = {
        "table": lambda: text.table(result, depth) + summary,
        "markdown": lambda: text.markdown(result, depth) + summary,
        "csv": lambda: text.csv(result, depth),
        "json": result.to_json,
    }
    code = _deliver(stem, renderers, lambda src: html.profile_page(result, src), result.to_json, fmt, output, save,
                    no_save, plotlyjs)
    if check is not None:
        click.echo(check.report())
        code = max(code, 0 if check.agrees else 1)
    return max(code, _interrupted([result]))


def _step_flags(flags: dict[str, Any]) -> dict[str, Any]:
    """The request's fields of a training step and an ensemble, taken out of the command's options."""
    freeze = tuple(flags.pop("freeze"))
    return {"train": flags.pop("train_step"), "optimizer": flags.pop("optimizer"), "freeze": freeze,
            "freeze_until": flags.pop("freeze_until"), "ensemble": flags.pop("ensemble"), "crops": flags.pop("crops")}


def _profile_and_summary(request: Any) -> tuple[Any, str]:
    """The profile a command line asks for, and a summary to print under its table: a training
    step's, or an ensemble's against its single model."""
    from dataclasses import replace

    from costlens.request import checked
    from costlens.run import run, run_all

    request = checked(request)
    if request.step:
        from costlens.report.training_text import step_summary

        result = run(request)
        return result, "\n" + step_summary(result)
    if request.grouped:
        from costlens.report.ensemble_text import summary

        single = replace(request, ensemble=None, crops=None, batches=request.batches[:1],
                         model=request.members[0] if request.model is None else request.model)
        result, alone = run_all([request, single])
        return result, "\n" + summary(result, alone, request.members, request.crops or 1)
    return run(request), ""


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
@click.option("--ensemble", metavar="N|A,B,C",
              help="Add an ensemble as the last model: N copies of the first model, or these models, averaged.")
@click.option("--crops", type=click.IntRange(min=1, max=1000), default=None,
              help="With --ensemble (or alone): the ensemble sees each image as this many crops.")
@click.option("--apply", "applied", multiple=True, metavar="PATH=ALTERNATIVE",
              help="Add the first model rewritten at PATH with an alternative (repeatable; see costlens whatif) as "
                   "the last model.")
@strict_option
@_timing_options
@debug_option
def compare_command(models: tuple[str, ...], input_shape: tuple[int, ...] | None, batch: tuple[int, ...] | None,
                    depth: int | None, fmt: str, output: str | None, save: str | None, no_save: bool,
                    plotlyjs: str | None, device: str | None, dtype: str, ensemble: str | None, crops: int | None,
                    applied: tuple[str, ...], strict: bool, time_it: bool, **timing_flags: Any) -> int:
    """Compare MODELS (zoo names, import paths or saved .json profiles), the first as baseline.

    \b
    Prints totals and matched blocks with ratios (or -o PATH). The table also saves
    the page reports/compare-A-vs-B.html; --save chooses where, --no-save saves nothing.
    --format html writes the page to -o PATH, or to reports/compare-A-vs-B.html.
    --ensemble 7 --crops 10 adds seven copies of the first model on 10 crops of each image.
    """
    grouped = ensemble is not None or crops is not None
    if len(models) < (1 if grouped or applied else 2):
        raise click.UsageError("compare needs at least two models (or one and --ensemble/--crops or --apply)")
    from costlens.api import is_saved_profile, profiles_of
    from costlens.comparison import align
    from costlens.report import comparison_text as text
    from costlens.report import html

    _settle_process()
    template = _request_of("", input_shape, batch, device, dtype, time_it, strict=strict, **timing_flags)
    if grouped and (ensemble is None or ensemble.strip().isdecimal()) and is_saved_profile(models[0]):
        raise click.UsageError(f"--ensemble copies the first model, and {models[0]} is a saved profile: "
                               "name the members (--ensemble A,B,C)")
    from dataclasses import replace

    if applied and is_saved_profile(models[0]):
        raise click.UsageError(f"--apply rewrites the first model, and {models[0]} is a saved profile: name the model")
    requests: list[Any] = list(models)
    if grouped:
        requests.append(replace(template, model=models[0], ensemble=ensemble, crops=crops))
    if applied:
        requests.append(replace(template, model=models[0], apply=applied))
    with _model_output_to_stderr():
        profiles = profiles_of(requests, template)
    comparison = align(profiles, depth=depth)
    shape = profiles[0].input_shape if (input_shape or batch) else None
    renderers = {
        "table": lambda: text.comparison_table(comparison),
        "markdown": lambda: text.comparison_markdown(comparison),
        "csv": lambda: text.comparison_csv(comparison),
        "json": comparison.to_json,
    }
    code = _deliver(_compare_stem([p.model for p in profiles], shape, dtype), renderers,
                    lambda src: html.comparison_page(comparison, src), None, fmt, output, save, no_save, plotlyjs)
    # a saved profile cut short by Ctrl-C in its own run says so on its page; this run was not interrupted
    return max(code, _interrupted([p for spec, p in zip(requests, profiles) if not is_saved_profile(spec)]))


@cli.command("check")
@click.argument("budget_file", default="reports/budgets.toml", metavar="[FILE]")
@click.option("--junit", type=click.Path(dir_okay=False), help="Also write the verdicts as JUnit XML here.")
@debug_option
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


def _interrupted(profiles: list[Any]) -> int:
    """130 when Ctrl-C cut a measurement short (what was measured is written), else 0."""
    if any((p.timing or {}).get("interrupted") for p in profiles):
        click.echo("costlens: interrupted: what was measured before Ctrl-C is in the output", err=True)
        return 130
    return 0


@cli.command("sweep")
@click.argument("name")
@click.option("--input", "input_texts", multiple=True, metavar="[NAME=]SHAPE[:DTYPE[:FILL]]",
              help="Inputs as profile takes them (repeatable, named for keyword inputs); one carries the sizes to sweep "
                   "in groups, e.g. 1x3x{112,160,224,320,448}x{same} ({same} repeats the group before it, also in a "
                   "later input: --input input_ids=1x{32,64,128}:int64 --input attention_mask=1x{same}:int64:ones).")
@click.option("--batch", "batch_text", metavar="N,N,...", help="Batch sizes to sweep, e.g. 1,2,4,8.")
@click.option("--width", "width_text", metavar="W,W,...",
              help="Width multipliers to sweep (ResNet and VGG zoo models, or a factory taking width=), e.g. 0.5,1,2.")
@click.option("--depth", "depth_text", metavar="D,D,...",
              help="Depths to sweep, where the zoo has the model's family at those depths, e.g. 18,34,50,101,152.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True, help="Output format.")
@output_option
@plotlyjs_option
@device_option
@dtype_option
@click.option("--time", "time_it", is_flag=True, help="Also measure end-to-end latency at each point.")
@no_save_option
@debug_option
def sweep_command(name: str, input_texts: tuple[str, ...], batch_text: str | None, width_text: str | None,
                  depth_text: str | None, fmt: str, output: str | None, plotlyjs: str | None, device: str | None,
                  dtype: str, time_it: bool, no_save: bool) -> int:
    """How NAME's cost grows with input size, batch size, width or depth: a table, the fitted
    growth exponent of each metric (log-log least squares, with R²), and reports/sweep-NAME.json
    and .html. Progress goes to stderr; Ctrl-C keeps the points already profiled."""
    from costlens import sweep
    from costlens.files import report_stem
    from costlens.report import html
    from costlens.report import sweep_text as text
    from costlens.request import Front

    batches = sweep.parse_counts(batch_text, "--batch") if batch_text else None
    widths = sweep.parse_floats(width_text, "--width") if width_text else None
    depths = sweep.parse_counts(depth_text, "--depth", "18,34,50") if depth_text else None
    timing: Any = False
    if time_it:
        from costlens.timing.options import TimingOptions

        timing = TimingOptions(device=device or "auto", layers=False)
    _settle_process()
    with _model_output_to_stderr():
        result = sweep.sweep(name, inputs=list(input_texts) or None, batches=batches, widths=widths, depths=depths,
                             dtype=dtype, device=device or "meta", timing=timing, progress=None, front=Front.CLI)
    stem = f"sweep-{report_stem(result.model)}-{result.swept}"
    renderers = {"table": lambda: text.table(result), "markdown": lambda: text.markdown(result),
                 "csv": lambda: text.csv(result), "json": result.to_json}
    code = _deliver(stem, renderers, lambda src: html.sweep_page(result, src), result.to_json, fmt, output, None,
                    no_save, plotlyjs)
    if result.interrupted:
        click.echo("costlens: interrupted: the points profiled before Ctrl-C are in the output", err=True)
        return 130
    return code


@cli.command("whatif")
@click.argument("name")
@input_option
@click.option("--top", type=click.IntRange(min=1), default=None, metavar="N",
              help="Price the N costliest convolutions (default: the ones that together make 90% of the MACs).")
@click.option("--layer", "layers", multiple=True, metavar="PATH",
              help="Price the convolution at PATH (repeatable), e.g. inception3b.branch3.conv.conv.")
@click.option("--reduce", type=click.IntRange(min=1), default=None, metavar="C",
              help="Bottlenecks to C channels (the lecture's 16) instead of to the input's channels / 2, 4 and 8.")
@format_option
@output_option
@save_option
@no_save_option
@plotlyjs_option
@dtype_option
@apply_option
@click.option("--compare", "compare_it", is_flag=True,
              help="With --apply: the original and the rewritten model block by block, as `costlens compare` shows them.")
@debug_option
def whatif_command(name: str, input_shape: tuple[int, ...] | None, top: int | None, layers: tuple[str, ...],
                   reduce: int | None, fmt: str, output: str | None, save: str | None, no_save: bool,
                   plotlyjs: str | None, dtype: str, applied: tuple[str, ...], compare_it: bool) -> int:
    """What the standard alternatives of NAME's costliest convolutions would cost: a 1×1
    bottleneck first, depthwise-separable, grouped, factorized into 3×3s, k×1 then 1×k.

    \b
    Each alternative is built and counted by the tracer, with its saving against the layer
    and the whole model. The table also saves reports/whatif-NAME.json and .html; --save
    chooses where, --no-save saves nothing. --apply PATH=ALTERNATIVE profiles the rewritten
    model instead; with --compare, beside the original (the page reports/compare-...html).
    """
    from dataclasses import replace

    from costlens import alternatives

    changes = alternatives.parse_applied(applied, "--apply")
    if compare_it and not changes:
        raise click.UsageError("--compare sets the model rewritten by --apply PATH=ALTERNATIVE beside the original: "
                               "give --apply")
    if changes and (top is not None or layers or reduce is not None):
        raise click.UsageError("--top, --layer and --reduce choose what the table of alternatives prices; with --apply "
                               "the rewritten model is profiled instead: choose one")
    _settle_process()
    with _model_output_to_stderr(), _input_hint(name, input_shape):
        if not changes:
            result = alternatives.whatif(name, input_shape, top=top, layers=list(layers) or None, reduce=reduce,
                                         dtype=dtype, argument="--input")
        else:
            from costlens.request import Front, Request
            from costlens.run import run_all

            plain = Request(name, input_shape, dtype=dtype, front=Front.CLI)
            original, rewritten = run_all([plain, replace(plain, apply=applied)])
    if not changes:
        return _whatif_table(result, name, fmt, output, save, no_save, plotlyjs, dtype)
    if compare_it:
        return _whatif_comparison(original, rewritten, input_shape, fmt, output, save, no_save, plotlyjs, dtype)
    return _whatif_rewritten(rewritten, name, applied, fmt, output, save, no_save, plotlyjs, dtype)


def _whatif_table(result: Any, name: str, fmt: str, output: str | None, save: str | None, no_save: bool,
                  plotlyjs: str | None, dtype: str) -> int:
    """The table of alternatives where the user asked, then its JSON and page."""
    from costlens.report import html
    from costlens.report import whatif_text as text

    stem = "whatif-" + _profile_stem(name, list(result.input_shape), dtype, False)
    renderers = {"table": lambda: text.table(result), "markdown": lambda: text.markdown(result),
                 "csv": lambda: text.csv(result), "json": result.to_json}
    return _deliver(stem, renderers, lambda src: html.whatif_page(result, src), result.to_json, fmt, output,
                           save, no_save, plotlyjs)


def _whatif_rewritten(rewritten: Any, name: str, applied: tuple[str, ...], fmt: str, output: str | None,
                      save: str | None, no_save: bool, plotlyjs: str | None, dtype: str) -> int:
    """The rewritten model's profile, as `costlens profile` shows one, saved under a name of its own."""

    from costlens.report import html
    from costlens.report import profile_text as text

    stem = _fit(_profile_stem(name, rewritten.input_shape, dtype, False) + _apply_suffix(applied))
    renderers = {"table": lambda: text.table(rewritten), "markdown": lambda: text.markdown(rewritten),
                 "csv": lambda: text.csv(rewritten), "json": rewritten.to_json}
    return _deliver(stem, renderers, lambda src: html.profile_page(rewritten, src), rewritten.to_json, fmt,
                           output, save, no_save, plotlyjs)


def _whatif_comparison(original: Any, rewritten: Any, input_shape: tuple[int, ...] | None, fmt: str,
                       output: str | None, save: str | None, no_save: bool, plotlyjs: str | None, dtype: str) -> int:
    """The original and the rewritten model aligned block by block, as `costlens compare` shows them."""
    from costlens.comparison import align
    from costlens.report import comparison_text as text
    from costlens.report import html

    comparison = align([original, rewritten])
    stem = _compare_stem([original.model, rewritten.model], original.input_shape if input_shape else None, dtype)
    renderers = {"table": lambda: text.comparison_table(comparison), "markdown": lambda: text.comparison_markdown(comparison),
                 "csv": lambda: text.comparison_csv(comparison), "json": comparison.to_json}
    return _deliver(stem, renderers, lambda src: html.comparison_page(comparison, src), None, fmt, output,
                           save, no_save, plotlyjs)


@cli.command("device")
@click.option("--device", type=click.Choice(("auto", "cpu", "cuda")), default="auto", show_default=True,
              help="The device to describe.")
@click.option("--recalibrate", is_flag=True, help="Measure again instead of using the cached calibration.")
@click.option("--format", "fmt", type=click.Choice(("table", "json")), default="table", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the output here instead of stdout.")
@_device_overrides
@debug_option
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
        if not isinstance(input_shape, tuple) or default is None or tuple(default) == tuple(input_shape):
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
    """'-8x3x224x224', '-float16', '-train-mode': what tells runs of one model apart."""
    from costlens.units import format_shape

    parts = [format_shape(shape)] if shape else []
    parts += [dtype] if dtype != "float32" else []
    parts += ["train-mode"] if train else []
    return "".join(f"-{part}" for part in parts)


def _apply_suffix(applied: tuple[str, ...]) -> str:
    """'-rewritten-1a2b3c4d': a model rewritten with --apply, apart from the original's reports."""
    if not applied:
        return ""
    import hashlib

    return "-rewritten-" + hashlib.sha256("\n".join(applied).encode()).hexdigest()[:8]


def _step_suffix(request: Any) -> str:
    """'-train', '-train-adam-frozen': a training step, its optimizer when not plain SGD, and a freeze."""
    optimizer = f"-{request.optimizer}" if request.optimizer not in (None, "sgd") else ""
    return f"-train{optimizer}" + ("-frozen" if request.freeze or request.freeze_until else "")


def _profile_stem(name: str, shape: list[int], dtype: str, train: bool, inputs: list[Any] | None = None) -> str:
    """reports/STEM.json: the model, and its input when it is not the model's default (every
    input, named, when it takes several or keyword ones)."""
    from costlens.files import report_stem

    if inputs and (len(inputs) > 1 or inputs[0].name is not None):
        described = "-".join(f"{i.name or ''}{'-' if i.name else ''}{'x'.join(map(str, i.shape))}" for i in inputs)
        return _fit(report_stem(name) + "-" + report_stem(described) + _suffix(None, dtype, train))
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


def _same_file(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name one file (resolved, so links and ./ count)."""
    return Path(a).resolve() == Path(b).resolve()


def _deliver(stem: str, renderers: dict[str, Callable[[], str]], render_page: Callable[[str | None], str],
             to_json: Callable[[], str] | None, fmt: str, output: str | None, save: str | None, no_save: bool,
             plotlyjs: str | None) -> int:
    """The output asked for (stdout, -o PATH, or the page with --format html), then the reports
    saved beside it, all or none (README, "Where output goes"): the JSON when there is one and
    the page, into reports/, --save DIR, or as --save FILE.json / FILE.html."""
    from costlens.report import html

    json_path, page_path = _report_paths(save, stem, ".json" if to_json else ".html")
    saved = [json_path, page_path] if to_json else [page_path]
    if output not in (None, "-") and save is not None and _saving(fmt, output, save, no_save) and any(
            _same_file(output, path) for path in [*saved, Path(save)]):
        raise click.UsageError(f"-o {output} and --save {save} name the same file: choose two places")
    page_output = (output or str(page_path)) if fmt == "html" else None
    if page_output is not None:
        _emit_page(render_page, page_output, plotlyjs)
    else:
        _emit(renderers[fmt](), output)
    if not _saving(fmt, output, save, no_save):
        return 0
    writes: list[tuple[Path, Callable[[], str]]] = [(json_path, to_json)] if to_json is not None else []
    if page_output is None or Path(page_output) != page_path:
        writes.append((page_path, lambda: render_page(html.plotly_reference(plotlyjs, page_path.parent))))
    return _save(writes, explicit=save is not None, plotly_dir=plotlyjs) if writes else 0


def _save(writes: list[tuple[Path, Callable[[], str]]], explicit: bool, plotly_dir: str | None = None) -> int:
    """Save the reports of a command all together or none of them (``files.OutputBatch``; the
    shared plotly.js of ``--plotlyjs`` with them when it is not there yet), then say what was
    saved on stderr. A failure is an error (exit 2) when the user asked with --save, else a
    warning: the output was already delivered."""
    from costlens.errors import CostlensError
    from costlens.files import OutputBatch
    from costlens.report import html

    try:
        with OutputBatch() as batch:
            for path, render in writes:
                batch.add(path, render())
            shared = html.plotly_file(plotly_dir)
            if shared is not None:
                batch.add(*shared)
    except CostlensError as failure:
        if explicit:
            click.echo(f"costlens: error: {failure}", err=True)
            return failure.exit_code
        click.echo(f"costlens: warning: reports not saved: {failure} (--save DIR saves elsewhere, --no-save skips "
                   "this)", err=True)
        return 0
    click.echo(f"saved {' and '.join(str(path) for path in batch.written[:len(writes)])}", err=True)
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


def main() -> None:
    """Console-script entry point."""
    cli.main()
