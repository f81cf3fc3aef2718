"""One request, one check: the command line and the Python API refuse the same things with the same words."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner

import costlens
from costlens.cli import cli
from costlens.count.formulas import FREE
from costlens.errors import InputShapeError
from costlens.request import NEEDS, PAIRS, SPELLINGS, Front, Request, checked
from costlens.timing.measure import TimingOptions

# How each argument of the table is given on the command line, and to ``costlens.profile``.
CLI_ARGS: dict[str, list[str]] = {
    "train": ["--train"], "train_mode": ["--train-mode"], "ensemble": ["--ensemble", "2"],
    "compile": ["--compile"], "channels_last": ["--channels-last"], "batches": ["--batch", "1,2"],
    "optimizer": ["--optimizer", "adam"], "time": ["--time"], "layers": ["--no-layers"],
    "layer_time": ["--layer-time", "0.2"], "peak_flops": ["--peak-flops", "1T"], "bandwidth": ["--bandwidth", "1T"],
    "device_file": ["--device-file", "device.json"], "apply": ["--apply", "conv=depthwise"],
    "threads": ["--threads", "1"], "cuda_graphs": ["--cuda-graphs"], "layer_time_method": ["--layer-time-method", "both"],
    "latency_time": ["--latency-time", "0.2"], "latency_cap": ["--latency-cap", "5"],
    "precision": ["--precision", "0.05"], "recalibrate": ["--recalibrate"],
}
TIMING = {"compile": True, "channels_last": True, "layers": False, "layer_time": 0.2, "peak_flops": 1e12,
          "bandwidth": 1e12, "device_file": "device.json", "threads": 1, "cuda_graphs": True,
          "layer_time_method": "both", "latency_time": 0.2, "latency_cap": 5.0, "precision": 0.05,
          "recalibrate": True}


def api_kwargs(*arguments: str) -> dict[str, Any]:
    """``profile`` keywords that give each argument (timing options inside ``time=TimingOptions(...)``)."""
    kwargs: dict[str, Any] = {}
    timing = {name: TIMING[name] for name in arguments if name in TIMING}
    for name in arguments:
        if name in ("train", "train_mode", "time"):
            kwargs[name] = True
        elif name == "ensemble":
            kwargs["ensemble"] = 2
        elif name == "formulas":
            kwargs["formulas"] = {"aten.relu": lambda args, kwargs, out: FREE}
        elif name == "batches":
            kwargs["batch"] = [1, 2]
        elif name == "optimizer":
            kwargs["optimizer"] = "adam"
        elif name == "apply":
            kwargs["apply"] = ["conv=depthwise"]
    if timing:
        kwargs["time"] = TimingOptions(**timing)
    return kwargs


def as_command_line(message: str) -> str:
    """A Python API message with the arguments it names (before its first ': ') spelled as the
    command line spells them; the reason after it stays word for word."""
    head, _, why = message.partition(": ")
    words = {python: command for python, command in SPELLINGS.values()}
    return " ".join(words.get(word, word) for word in head.split(" ")) + ": " + why


COMBINATIONS = [(first, second) for first, second, _ in PAIRS] + [(argument, None) for argument, _, _ in NEEDS]


@pytest.mark.parametrize(("first", "second"), COMBINATIONS, ids=lambda value: str(value))
def test_the_cli_and_the_api_refuse_each_combination_with_the_same_words(first: str, second: str | None) -> None:
    given = [first] + ([second] if second else [])
    api_message = None
    if "formulas" not in given and not (second is None and first in TIMING):  # what Python can express
        with pytest.raises(InputShapeError) as refused:
            costlens.profile("conv5x5", **api_kwargs(*given))
        api_message = str(refused.value)
    if "formulas" in given:  # no command-line form: the request itself, as the API makes it
        with pytest.raises(InputShapeError) as refused:
            costlens.profile("conv5x5", **api_kwargs(*given))
        assert "formulas" in str(refused.value) and "ensemble" in str(refused.value)
        return
    ran = CliRunner().invoke(cli, ["profile", "conv5x5", "--no-save", *(a for name in given for a in CLI_ARGS[name])])
    assert ran.exit_code == 2, ran.output
    lines = ran.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("costlens: error: "), ran.stderr
    cli_message = lines[0].removeprefix("costlens: error: ")
    assert CLI_ARGS[first][0] in cli_message  # it names what the user gave
    if second is not None:
        assert CLI_ARGS[second][0] in cli_message
    if api_message is not None:
        assert as_command_line(api_message) == cli_message


def test_a_timing_option_without_time_is_refused_in_python_too() -> None:
    # Python cannot pass a timing option without time=..., but a request can carry one
    with pytest.raises(InputShapeError, match=r"^time.compile needs time: it sets how the model is timed$"):
        checked(Request("conv5x5", timing=TimingOptions(compile=True)))
    with pytest.raises(InputShapeError, match=r"^--compile needs --time: it sets how the model is timed$"):
        checked(Request("conv5x5", timing=TimingOptions(compile=True), front=Front.CLI))


def test_train_mode_with_an_ensemble_is_refused_not_dropped() -> None:
    # `profile resnet18 --ensemble 2 --train-mode` once counted the ensemble in eval mode without a word
    ran = CliRunner().invoke(cli, ["profile", "conv5x5", "--ensemble", "2", "--train-mode", "--no-save"])
    assert ran.exit_code == 2
    assert "--ensemble and --train-mode do not combine" in ran.stderr


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"crops": "10"}, "crops: a whole number from 1 to 1000, got '10'"),
    ({"crops": 1.5}, "crops: a whole number from 1 to 1000, got 1.5"),
    ({"freeze": 5}, "freeze: expected module path globs like 'features.*', got 5"),
    ({"freeze": [None]}, "freeze: expected module path globs like 'features.*', got [None]"),
    ({"freeze_until": ""}, "freeze_until: expected a module path like 'layer3', got ''"),
    ({"batch": True}, "batch: batch sizes must be whole numbers from 1 to 2,147,483,648, got True"),
    ({"batch": [True, 2], "time": True}, "batch: batch sizes must be whole numbers from 1 to 2,147,483,648, got True"),
    ({"batch": 2.5}, "batch: batch sizes must be whole numbers from 1 to 2,147,483,648, got 2.5"),
    ({"batch": [2, 2], "time": True}, "batch: 2 is listed twice"),
    ({"train": "yes"}, "train: expected True or False, got 'yes'"),
    ({"optimizer": "lion", "train": True}, "optimizer: expected one of sgd, sgd-momentum, adam, got 'lion'"),
    ({"formulas": [1]}, "formulas: expected a dict of aten op -> handler, got [1]"),
    ({"formulas": {42: print}}, "formulas: keys are aten ops (torch.ops.aten.foo) or 'aten.foo', got 42"),
    ({"dtype": "int64"}, "dtype: int64 is not a dtype to trace in; choose float32, float16, bfloat16"),
    ({"device": "tpu"}, "device: 'tpu' is not a device (meta, cpu or cuda)"),
])
def test_each_python_argument_is_checked_and_named(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InputShapeError) as refused:
        costlens.profile("conv5x5", **kwargs)
    assert str(refused.value) == message


@pytest.mark.parametrize(("cli_args", "api_kwargs"), [
    (["--freeze", "act*"], {"freeze": "act*"}),
    (["--freeze-until", "conv1"], {"freeze_until": "conv1"}),
    (["--freeze", "nothing.*"], {"freeze": "nothing.*"}),
])
def test_a_freeze_that_freezes_nothing_is_refused_alike_at_both_doors(cli_args: list[str],
                                                                      api_kwargs: dict[str, Any]) -> None:
    from tests.evil_models import named_activations

    with pytest.raises(InputShapeError) as refused:
        costlens.profile(named_activations(), (1, 3, 8, 8), **api_kwargs)
    ran = CliRunner().invoke(cli, ["profile", "tests.evil_models:named_activations", "--input", "1x3x8x8", "--no-save",
                                   *cli_args])
    assert ran.exit_code == 2
    assert ran.stderr.strip() == f"costlens: error: {as_command_line(str(refused.value))}"
