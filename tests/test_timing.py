"""Measured time on cpu: threads, the interval by hand, the roofline by hand, memory from allocation
events, JSON and the header, budgets' ratio rules, Ctrl-C, refusals.

Timing here uses tiny models and short caps (QUICK): the plumbing is the point, not the figures.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from costlens import profile
from costlens.cli import cli
from costlens.errors import CostlensError, InputShapeError
from costlens.records import Profile
from costlens.timing import measure, roofline
from costlens.timing.measure import TimingOptions
from costlens.timing.memory import peak_memory
from costlens.timing.stats import from_measurement, median_interval
from tests import timing_models

ROOT = Path(__file__).resolve().parents[1]
QUICK = TimingOptions(device="cpu", layer_time=0.005, latency_time=0.02, latency_cap=0.2, peak_flops=1e11,
                      bandwidth=1e10, progress=False)
FAST_FLAGS = ["--device", "cpu", "--layer-time", "0.005", "--peak-flops", "100G", "--bandwidth", "10G"]


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def _run(args: list[str]):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli, args)


# --- statistics ------------------------------------------------------------------------------


def test_stats_come_from_the_benchmark_measurement() -> None:
    from torch.utils.benchmark import Measurement, TaskSpec

    # 4 blocks of 10 runs each: 1, 2, 3, 4 ms per run -> median 2.5 ms, IQR 3.25 - 1.75 = 1.5 ms
    found = Measurement(10, [0.010, 0.020, 0.030, 0.040], TaskSpec("f()", "pass"))
    stats = from_measurement(found)
    assert stats.median_ms == pytest.approx(2.5) and stats.iqr_ms == pytest.approx(1.5)
    assert stats.min_ms == pytest.approx(1.0) and stats.runs == 40 and stats.samples == 4
    # 4 samples cannot give 95%: the interval is the whole range, with 1 - 2/16 = 87.5% coverage
    assert (stats.ci_low_ms, stats.ci_high_ms) == pytest.approx((1.0, 4.0)) and stats.confidence == 0.875


def test_interval_for_the_median_by_hand() -> None:
    # 10 samples: P(Binomial(10, 1/2) <= 1) = (1 + 10) / 1024 = 0.0107 <= 0.025 < P(<= 2) = 56/1024,
    # so the 95% interval runs from the 2nd to the 9th smallest, covering 1 - 2 * 11/1024 = 0.97852
    samples = [7.0, 1.0, 9.0, 3.0, 10.0, 2.0, 8.0, 5.0, 4.0, 6.0]
    low, high, coverage = median_interval(samples)
    assert (low, high) == (2.0, 9.0) and coverage == pytest.approx(1 - 22 / 1024)
    # 6 samples: rank 1 covers 1 - 2/64 = 0.96875; rank 2 would cover 1 - 14/64 = 0.78
    assert median_interval([6.0, 5.0, 4.0, 3.0, 2.0, 1.0]) == (1.0, 6.0, pytest.approx(0.96875))
    # 1000 samples 1..1000: the normal approximation's rank 469 (n/2 - 1.96 sqrt(n)/2 = 469.0)
    low, high, coverage = median_interval([float(i) for i in range(1, 1001)])
    assert (low, high) == (469.0, 532.0) and 0.95 <= coverage < 0.96


def test_roofline_by_hand() -> None:
    # peak 100 GFLOP/s, bandwidth 10 GB/s: ridge at 10 FLOPs/byte
    low = roofline.point(flops=1e6, nbytes=1e6, time_ms=1.0, peak=1e11, bandwidth=1e10)
    assert low.intensity == 1 and low.attainable == 1e10  # memory roof: 1 FLOP/byte × 10 GB/s
    assert low.achieved == 1e9 and low.share == pytest.approx(0.1)  # 1e6 FLOPs in 1 ms
    assert low.predicted_ms == pytest.approx(0.1)  # 1e6 / 1e10 s
    high = roofline.point(flops=1e9, nbytes=1e6, time_ms=20.0, peak=1e11, bandwidth=1e10)
    assert high.attainable == 1e11 and high.predicted_ms == pytest.approx(10.0)  # compute roof
    assert roofline.bound(1.0, 1e11, 1e10) == "memory" and roofline.bound(1000.0, 1e11, 1e10) == "compute"


# --- threads -------------------------------------------------------------------------------------


@pytest.mark.parametrize("threads", [1, 2])
def test_every_timed_call_runs_on_the_recorded_thread_count(threads: int) -> None:
    if threads > torch.get_num_threads() and threads > os.cpu_count():  # type: ignore[operator]
        pytest.skip("one CPU")
    model = timing_models.ThreadsModel()
    before = torch.get_num_threads()
    result = profile(model, (1, 16), time=replace_options(threads=threads))
    timing = result.timing or {}
    # the forwards the timers ran (end to end, warm-up, memory, capture, replay) saw the recorded count
    assert model.probe.seen and set(model.probe.seen) == {timing["threads"]} == {threads}
    assert timing["timed_on"]["threads"] == threads
    assert torch.get_num_threads() == before  # the caller's setting is restored


def test_the_default_thread_count_is_torchs() -> None:
    model = timing_models.ThreadsModel()
    result = profile(model, (1, 16), time=QUICK)
    assert set(model.probe.seen) == {torch.get_num_threads()} == {(result.timing or {})["threads"]}


# --- a timed profile --------------------------------------------------------------------------


def test_a_timed_profile_has_every_measured_metric_and_round_trips() -> None:
    result = profile("conv1x1-5x5", time=QUICK)
    for key in ("latency_ms", "throughput", "time_ms", "predicted_ms", "peak_memory_bytes"):
        assert result.totals[key] > 0, key
    timing = result.timing or {}
    batch = timing["batches"][0]
    assert batch["runs"] >= 1 and timing["device"]["source"] == "override"
    assert batch["ci_low_ms"] <= batch["median_ms"] <= batch["ci_high_ms"]
    assert batch["stopped"] in ("interval", "time cap")
    leaves = [layer for layer in result.leaves() if layer.values.get("time_ms") is not None]
    assert len(leaves) == len(result.leaves())
    # a parent's time is the sum of its leaves'
    assert result.root.values["time_ms"] == pytest.approx(sum(layer.values["time_ms"] for layer in leaves))
    # throughput = batch / latency
    assert result.totals["throughput"] == pytest.approx(1 / (result.totals["latency_ms"] / 1e3))
    again = Profile.from_json(result.to_json())
    assert again == result


def test_header_and_json_say_where_it_was_counted_and_timed() -> None:
    from costlens.report.html import profile_page
    from costlens.report.profile_text import header

    result = profile("conv5x5", time=replace_options(channels_last=True, layers=False, peak_flops=None, bandwidth=None))
    timing = result.timing or {}
    assert timing["counted_on"] == "meta"
    assert timing["timed_on"] == {"device": "cpu", "name": timing["timed_on"]["name"], "dtype": "float32",
                                  "threads": torch.get_num_threads(), "compile": False, "channels_last": True,
                                  "cuda_graphs": False}
    assert timing["device"] is None  # no layer times: no roofline, so nothing was calibrated
    said = f"counted on meta, timed on cpu ({timing['timed_on']['name']}) with {torch.get_num_threads()} threads, " \
           "float32, eager, channels-last"
    assert said in " ".join(header(result).split()) and "device meta" not in header(result)
    assert said in profile_page(result)


def replace_options(**changes: object) -> TimingOptions:
    from dataclasses import replace

    if changes.get("layers") is False:
        changes.setdefault("layer_time", None)  # no layer is timed: a layer time would be refused
    return replace(QUICK, **changes)  # type: ignore[arg-type]


def test_several_batch_sizes_each_timed() -> None:
    result = profile("conv5x5", time=QUICK, batch=[1, 3])
    batches = (result.timing or {})["batches"]
    assert [b["batch"] for b in batches] == [1, 3]
    assert result.input_shape[0] == 1 and result.totals["macs"] == 120_422_400  # counted at the first size


def test_a_batch_size_given_twice_is_refused() -> None:
    with pytest.raises(InputShapeError, match="^batch: 2 is listed twice$"):
        profile("conv5x5", time=QUICK, batch=[2, 2])


def test_out_of_memory_at_one_batch_size_keeps_the_others() -> None:
    result = profile(timing_models_hungry(), (1, 8), time=QUICK, batch=[1, 4, 2])
    batches = {b["batch"]: b for b in (result.timing or {})["batches"]}
    assert batches[1]["median_ms"] > 0 and batches[2]["median_ms"] > 0
    assert batches[4].get("median_ms") is None
    assert "out of memory at batch 4" in batches[4]["error"]


def timing_models_hungry() -> torch.nn.Module:
    class HungryAtFour(torch.nn.Module):
        """A real model whose forward cannot get its memory from batch 4 on."""

        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(8, 8)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.shape[0] >= 4:
                torch.empty(2**62, dtype=torch.uint8)  # far beyond any machine: the allocator refuses
            return self.fc(x)

    return HungryAtFour()


# --- memory ----------------------------------------------------------------------------------------


def test_cpu_peak_memory_from_allocation_events_by_hand() -> None:
    x = torch.randn(256, 1024)  # 256 * 1024 * 4 B = 1 MiB
    # relu writes 1 MiB, cat 2 MiB while relu's output is alive: 3 MiB at most, then both freed
    assert peak_memory(lambda: timing_models.ReluCat()(x), torch.device("cpu")) == 3 * 2**20


def test_measured_peak_memory_does_not_depend_on_batch_order() -> None:
    # relu + cat on 1x192x28x28 float32: 192 * 28 * 28 * 4 = 602,112 B an image; 3 x that at batch 1, 4 x 3 x at 4
    shape = (1, 192, 28, 28)
    one = profile(timing_models.ReluCat(), shape, time=replace_options(layers=False), batch=[1, 4])
    other = profile(timing_models.ReluCat(), shape, time=replace_options(layers=False), batch=[4, 1])
    peaks = {b["batch"]: b["peak_memory_bytes"] for b in (one.timing or {})["batches"]}
    assert peaks == {b["batch"]: b["peak_memory_bytes"] for b in (other.timing or {})["batches"]}
    assert peaks == {1: 3 * 602_112, 4: 4 * 3 * 602_112}
    # the counted peak less weights (none) and the input: the same figure, counted on meta
    assert one.totals["peak_bytes"] - 602_112 == one.totals["peak_memory_bytes"]


# --- per-layer time in place -----------------------------------------------------------------------


def test_trace_attributes_time_to_the_call_that_spent_it() -> None:
    result = profile(timing_models.SleepThenAdd(), (1, 64), time=replace_options(layer_time_method="both",
                                                                                 layer_time=0.02))
    slow, fast = (next(layer for layer in result.leaves() if layer.path == p) for p in ("slow", "fast"))
    assert slow.values["traced_time_ms"] >= 20  # it sleeps 20 ms in place, every call
    assert fast.values["traced_time_ms"] < 5  # a relu of 64 numbers
    assert result.root.values["traced_time_ms"] == pytest.approx(slow.values["traced_time_ms"]
                                                                 + fast.values["traced_time_ms"])
    trace = (result.timing or {})["layers_trace"]
    assert trace["timed_calls"] == 2 and "wall time between its hooks" in trace["method"]
    assert (result.timing or {})["layers"]["timed_calls"] == 2  # replay ran too


# --- the command line ------------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "message"), [
    (["profile", "conv5x5", "--time", "--device", "meta"], "--time needs a real device"),
    (["profile", "conv5x5", "--batch", "1,8"], "--batch with several sizes needs --time"),
    (["profile", "conv5x5", "--compile"], "--compile needs --time"),
    (["profile", "conv5x5", "--batch", "1,x"], "is not a batch size"),
    (["profile", "conv5x5", "--time", "--peak-flops", "lots"], "is not a number"),
    (["device", "--device-file", "/nonexistent/device.json"], "cannot read a device description"),
])
def test_timing_usage_errors_are_one_line(args: list[str], message: str) -> None:
    result = _run(args)
    assert result.exit_code == 2, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_one_line() -> None:
    result = _run(["profile", "conv5x5", "--time", "--device", "cuda"])
    assert result.exit_code == 2
    assert result.stderr.strip() == ("costlens: error: device 'cuda' is not available here "
                                     "(torch.cuda.is_available() is False): time on cpu, or use --device auto")


def test_cli_time_table_has_time_share_and_bound(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    _short_caps(monkeypatch)
    result = _run(["profile", "conv1x1-5x5", "--time", *FAST_FLAGS, "--save", "p.json"])
    assert result.exit_code == 0, result.stderr
    heading = next(line for line in result.stdout.splitlines() if line.startswith("Layer"))
    assert "Time" in heading and "% Time" in heading and "Bound" in heading
    assert "Layers replayed alone: the sum of" in result.stdout and "95% interval" in result.stdout
    data = json.loads(Path("p.json").read_text())
    assert data["totals"]["latency_ms"] > 0 and data["timing"]["device"]["bandwidth"] == 1e10


def _short_caps(monkeypatch: pytest.MonkeyPatch) -> None:
    """The options the command line and budgets build get short caps (tests/timing_models.py)."""
    monkeypatch.setattr(measure, "TimingOptions", timing_models.ShortCaps)


def test_device_command_describes_an_overridden_device() -> None:
    result = _run(["device", "--device", "cpu", "--peak-flops", "2T", "--bandwidth", "100G", "--format", "json"])
    assert result.exit_code == 0, result.stderr
    facts = json.loads(result.stdout)
    assert facts["peak_flops"]["float32"] == 2e12 and facts["bandwidth"] == 1e11 and facts["source"] == "override"


def test_measured_ratio_rules_in_budgets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from costlens.budget import check, load_budget

    _short_caps(monkeypatch)
    path = tmp_path / "b.toml"
    # latency of a model against itself measured in the same run: equal within a factor of 3
    path.write_text('rules = [\n  "conv5x5.latency_ms <= 3 * conv5x5.latency_ms",\n'
                    '  "conv1x1-5x5.latency_ms <= 100 * conv5x5.latency_ms",\n]\n')
    verdicts = check(load_budget(path))
    assert all(v.passed and v.measured > 0 for v in verdicts)


def test_a_spread_is_not_compared_as_a_ratio() -> None:
    from costlens.comparison import align
    from costlens.report.comparison_text import NOT_COMPARED, totals_rows

    first, second = (profile(name, time=QUICK) for name in ("conv5x5", "conv1x1-5x5"))
    comparison = align([first, second])
    assert comparison.ratios("time_iqr_ms") == [None, None]
    assert comparison.ratios("latency_ms")[1] == pytest.approx(second.totals["latency_ms"] / first.totals["latency_ms"])
    rows = {row[0]: row for row in totals_rows(comparison)}
    assert rows["Time IQR"][-1] == NOT_COMPARED and "x" in rows["Latency"][-1]
    assert comparison.to_dict()["ratios"]["time_iqr_ms"] == [None, None]


# --- Ctrl-C ------------------------------------------------------------------------------------------


def test_ctrl_c_during_the_per_layer_capture_keeps_the_end_to_end_figures() -> None:
    result = profile(timing_models.StopsInCapture(), (1, 3, 8, 8), time=QUICK)
    timing = result.timing or {}
    assert timing["interrupted"] is True and timing["layers"] is None
    assert result.totals["latency_ms"] > 0 and timing["batches"][0]["median_ms"] > 0


def test_ctrl_c_on_the_command_line_writes_what_was_measured(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    # `python -m costlens`, with the short caps of _short_caps (the command line has no option for them yet)
    short = ("from tests.timing_models import use_short_caps; use_short_caps(); "
             "import runpy; runpy.run_module('costlens', run_name='__main__')")
    command = [sys.executable, "-c", short, "profile", "tests.timing_models:stops_in_capture", "--input", "1x3x8x8",
               "--time", *FAST_FLAGS, "--save", "r.json", "--format", "json", "-o", "out.json"]
    # the model sends itself SIGINT during the per-layer capture, as a terminal's Ctrl-C would arrive;
    # a run started in the background (nohup, `&` without job control) passes SIGINT on ignored
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert done.returncode == 130, done.stderr
    assert "interrupted" in done.stderr
    saved = json.loads((tmp_path / "r.json").read_text())
    assert saved["timing"]["interrupted"] is True and saved["totals"]["latency_ms"] > 0


# --- refusals -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("changes", "message"), [
    ({"threads": 0}, "--threads: expected 1 to"),
    ({"threads": -2}, "--threads: expected 1 to"),
    ({"threads": 10_000}, "--threads: expected 1 to"),
    ({"threads": True}, "--threads: expected a whole number"),
    ({"threads": 1.5}, "--threads: expected a whole number"),
    ({"layer_time": float("nan")}, "--layer-time: expected a finite number, got nan"),
    ({"layer_time": float("inf")}, "--layer-time: expected a finite number"),
    ({"layer_time": 0.0}, "--layer-time: expected seconds from 0.001 to 60"),
    ({"latency_cap": float("nan")}, "--latency-cap: expected a finite number"),
    ({"precision": 2.0}, "--precision: expected a fraction"),
    ({"layer_time_method": "guess"}, "--layer-time-method: expected replay, trace, both"),
    ({"peak_flops": 5e-308}, "--peak-flops: expected a rate from 1k to 1e21"),
    ({"bandwidth": float("inf")}, "--bandwidth: expected a finite number"),
    ({"batches": (1, True)}, "--batch: batch sizes are whole numbers"),
    ({"device": "mps"}, "--device: expected auto, cpu, cuda or cuda:N"),
])
def test_bad_options_are_one_line_naming_the_option(changes: dict[str, object], message: str) -> None:
    with pytest.raises(InputShapeError) as caught:
        replace_options(**changes)
    assert message in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize(("changes", "message"), [
    ({"cuda_graphs": True, "compile": True}, "--cuda-graphs with --compile"),
    ({"cuda_graphs": True}, "--cuda-graphs needs CUDA, and --device is cpu"),
    ({"layers": False, "layer_time": 0.1}, "--layer-time with --no-layers"),
    ({"layers": False, "layer_time": None, "layer_time_method": "trace"}, "--layer-time-method with --no-layers"),
    ({"recalibrate": True, "device_file": "d.json"}, "--recalibrate with --device-file"),
    ({"latency_cap": 0.01, "latency_time": 1.0}, "--latency-cap (0.01 s) is below --latency-time (1 s)"),
])
def test_options_that_make_no_sense_together_are_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(InputShapeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        replace_options(**changes).check()


def test_cuda_graphs_and_trace_without_cuda() -> None:
    with pytest.raises(CostlensError, match="--cuda-graphs needs CUDA, and this run times on cpu"):
        profile("conv5x5", time=replace_options(device="auto" if not torch.cuda.is_available() else "cpu",
                                                cuda_graphs=True))


# --- user code that fails while timed --------------------------------------------------------------


@pytest.mark.parametrize("call", [1, 11], ids=["in-warm-up", "after-warm-up"])
def test_a_forward_that_raises_while_timed_is_one_line(call: int) -> None:
    from costlens.errors import ModelError

    with pytest.raises(ModelError) as caught:
        profile(timing_models.RaisesOnCall(call), (1, 3, 8, 8), time=QUICK)
    assert re.fullmatch(r"the forward of RaisesOnCall raised ValueError: call " + str(call) + r" refused "
                        r"\(while it was timed at batch 1 on cpu; timing_models.py:\d+\)", str(caught.value))


def test_a_forward_that_raises_while_timed_on_the_command_line(monkeypatch: pytest.MonkeyPatch) -> None:
    _short_caps(monkeypatch)
    monkeypatch.syspath_prepend(str(ROOT))
    result = _run(["profile", "tests.timing_models:raises_after_warm_up", "--input", "1x3x8x8", "--time", *FAST_FLAGS])
    assert result.exit_code == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert re.fullmatch(r"costlens: error: the forward of tests.timing_models:raises_after_warm_up raised ValueError: "
                        r"call 11 refused \(while it was timed at batch 1 on cpu; timing_models.py:\d+\)", line)


def test_a_leaf_that_raises_when_replayed_leaves_the_end_to_end_figures() -> None:
    from costlens.report.timing_text import timing_summary

    result = profile(timing_models.LeafRaisesReplayedAlone(), (1, 3, 8, 8), time=QUICK)
    timing = result.timing or {}
    assert result.totals["latency_ms"] > 0 and "time_ms" not in result.totals
    assert timing["layers"]["error"] == "fragile raised RuntimeError: called outside the forward when replayed alone"
    assert "Layers replayed alone: not measured: fragile raised RuntimeError" in " ".join(timing_summary(result).split())


def test_a_budget_rule_on_a_model_that_raises_while_timed_is_one_line(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    _short_caps(monkeypatch)
    monkeypatch.syspath_prepend(str(ROOT))
    path = tmp_path / "b.toml"
    path.write_text('[models]\nbad = { import = "tests.timing_models:raises_after_warm_up", input = "1x3x8x8" }\n'
                    'rules = ["bad.latency_ms <= 2 * conv5x5.latency_ms"]\n')
    result = _run(["check", str(path)])
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "raised ValueError: call 11 refused" in result.stderr


def test_channels_last_times_a_3d_convolution() -> None:
    result = profile(timing_models.Conv3dNet(), (1, 2, 6, 6, 6), time=replace_options(channels_last=True))
    assert result.totals["latency_ms"] > 0 and (result.timing or {})["timed_on"]["channels_last"] is True


def test_a_forward_that_raises_while_a_training_step_is_timed_is_one_line() -> None:
    from costlens.errors import ModelError

    with pytest.raises(ModelError, match=r"^the training step raised ValueError: call 6 refused \(while it was timed "
                                         r"at batch 1 on cpu; timing_models.py:\d+\)$"):
        profile(timing_models.RaisesOnCall(6), (1, 3, 8, 8), train=True, time=QUICK, device="cpu")


def test_a_page_of_layers_timed_in_place_only_has_its_charts() -> None:
    from costlens.report.html import profile_page

    result = profile("conv1x1-5x5", time=replace_options(layer_time_method="trace"))
    assert "time_ms" not in result.totals and result.totals["traced_time_ms"] > 0
    page = profile_page(result)
    assert 'data-chart="roofline"' in page and 'data-chart="time-bars"' in page
    assert "in place (median)" in page


def test_the_summary_says_how_busy_the_machine_was() -> None:
    from costlens.report.timing_text import timing_summary

    result = profile("conv5x5", time=replace_options(layers=False, threads=1))
    machine = (result.timing or {})["machine"]
    assert machine["cpus"] >= 1 and len(machine["load_average"]) == 2
    busy = replace_timing(result, machine={"cpus": 2, "load_average": [3.0, 3.5]})
    assert "1-minute load average 3.0 -> 3.5 (start -> end) on 2 CPUs; it was busy" in " ".join(
        timing_summary(busy).split())
    quiet = replace_timing(result, machine={"cpus": 2, "load_average": [0.2, 1.1]})
    assert "it was busy" not in timing_summary(quiet)


def replace_timing(result: Profile, **changes: object) -> Profile:
    from dataclasses import replace

    return replace(result, timing={**(result.timing or {}), **changes})


def test_profiler_ranges_are_attributed_to_the_calls_that_opened_them() -> None:
    from costlens.timing.latency import Forward
    from costlens.timing.trace import trace_layers

    # the attribution CUDA uses, on cpu events: each repetition's range of each call is one sample
    model = timing_models.SleepThenAdd()
    found = trace_layers(model, Forward(model, (torch.randn(1, 64),), {}), torch.device("cpu"), repeats=6,
                         profiler=True)
    assert set(found.stats) == {("slow", 0), ("fast", 0)} and found.distinct == 2
    assert all(stats.samples == 6 for stats in found.stats.values())
    assert found.stats[("slow", 0)].median_ms >= 20 > found.stats[("fast", 0)].median_ms


def test_train_mode_is_timed_in_training_mode() -> None:
    """--train-mode --time times the forward it counted: every module in training mode."""
    seen = timing_models.ModeRecorder()
    profile(seen, (1, 3, 8, 8), train_mode=True, time=replace_options(layers=False))
    assert seen.modes and all(seen.modes)  # each real forward ran in training mode
    seen.modes.clear()
    profile(seen, (1, 3, 8, 8), time=replace_options(layers=False))
    assert seen.modes and not any(seen.modes)
