"""Measured time on cpu: statistics, the roofline by hand, JSON, budgets' ratio rules, faults."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from costlens import profile
from costlens.cli import cli
from costlens.records import Profile
from costlens.timing import roofline
from costlens.timing.measure import TimingOptions
from costlens.timing.stats import from_measurement

# Quick settings: figures are not the point here, the plumbing is.
QUICK = TimingOptions(device="cpu", layer_time=0.005, latency_time=0.02, rounds=2, peak_flops=1e11, bandwidth=1e10,
                      progress=False)
FAST_FLAGS = ["--device", "cpu", "--layer-time", "0.005", "--peak-flops", "100G", "--bandwidth", "10G"]


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def test_stats_come_from_the_benchmark_measurement() -> None:
    from torch.utils.benchmark import Measurement, TaskSpec

    # 4 blocks of 10 runs each: 1, 2, 3, 4 ms per run -> median 2.5 ms, IQR 3.25 - 1.75 = 1.5 ms
    found = Measurement(10, [0.010, 0.020, 0.030, 0.040], TaskSpec("f()", "pass"))
    stats = from_measurement(found)
    assert stats.median_ms == pytest.approx(2.5) and stats.iqr_ms == pytest.approx(1.5)
    assert stats.min_ms == pytest.approx(1.0) and stats.runs == 40


def test_roofline_by_hand() -> None:
    # peak 100 GFLOP/s, bandwidth 10 GB/s: ridge at 10 FLOPs/byte
    low = roofline.point(flops=1e6, nbytes=1e6, time_ms=1.0, peak=1e11, bandwidth=1e10)
    assert low.intensity == 1 and low.attainable == 1e10  # memory roof: 1 FLOP/byte × 10 GB/s
    assert low.achieved == 1e9 and low.share == pytest.approx(0.1)  # 1e6 FLOPs in 1 ms
    assert low.predicted_ms == pytest.approx(0.1)  # 1e6 / 1e10 s
    high = roofline.point(flops=1e9, nbytes=1e6, time_ms=20.0, peak=1e11, bandwidth=1e10)
    assert high.attainable == 1e11 and high.predicted_ms == pytest.approx(10.0)  # compute roof
    assert roofline.bound(1.0, 1e11, 1e10) == "memory" and roofline.bound(1000.0, 1e11, 1e10) == "compute"


def test_a_timed_profile_has_every_measured_metric_and_round_trips() -> None:
    result = profile("conv1x1-5x5", time=QUICK)
    for key in ("latency_ms", "throughput", "time_ms", "predicted_ms"):
        assert result.totals[key] > 0, key
    timing = result.timing or {}
    assert timing["batches"][0]["runs"] >= 1 and timing["device"]["source"] == "override"
    leaves = [layer for layer in result.leaves() if layer.values.get("time_ms") is not None]
    assert len(leaves) == len(result.leaves())
    # a parent's time is the sum of its leaves'
    assert result.root.values["time_ms"] == pytest.approx(sum(layer.values["time_ms"] for layer in leaves))
    # throughput = batch / latency
    assert result.totals["throughput"] == pytest.approx(1 / (result.totals["latency_ms"] / 1e3))
    again = Profile.from_json(result.to_json())
    assert again == result


def test_several_batch_sizes_each_timed() -> None:
    result = profile("conv5x5", time=QUICK, batch=[1, 3])
    batches = (result.timing or {})["batches"]
    assert [b["batch"] for b in batches] == [1, 3]
    assert result.input_shape[0] == 1 and result.totals["macs"] == 120_422_400  # counted at the first size


class HungryAtFour(nn.Module):
    """A real model whose forward cannot get its memory from batch 4 on."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] >= 4:
            torch.empty(2**62, dtype=torch.uint8)  # far beyond any machine: the allocator refuses
        return self.fc(x)


def test_out_of_memory_at_one_batch_size_keeps_the_others() -> None:
    result = profile(HungryAtFour(), (1, 8), time=QUICK, batch=[1, 4, 2])
    batches = {b["batch"]: b for b in (result.timing or {})["batches"]}
    assert batches[1]["median_ms"] > 0 and batches[2]["median_ms"] > 0
    assert batches[4]["median_ms"] is None if "median_ms" in batches[4] else True
    assert "out of memory at batch 4" in batches[4]["error"]


def _run(args: list[str]):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli, args)


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
    result = _run(["profile", "conv1x1-5x5", "--time", *FAST_FLAGS, "--save", "p.json"])
    assert result.exit_code == 0, result.stderr
    heading = result.stdout.splitlines()[3]
    assert "Time" in heading and "% Time" in heading and "Bound" in heading
    assert "Layers: the sum of" in result.stdout
    data = json.loads(Path("p.json").read_text())
    assert data["totals"]["latency_ms"] > 0 and data["timing"]["device"]["bandwidth"] == 1e10


def test_device_command_describes_an_overridden_device() -> None:
    result = _run(["device", "--device", "cpu", "--peak-flops", "2T", "--bandwidth", "100G", "--format", "json"])
    assert result.exit_code == 0, result.stderr
    facts = json.loads(result.stdout)
    assert facts["peak_flops"]["float32"] == 2e12 and facts["bandwidth"] == 1e11 and facts["source"] == "override"


def test_measured_ratio_rules_in_budgets(tmp_path: Path) -> None:
    from costlens.budget import check, load_budget

    path = tmp_path / "b.toml"
    # latency of a model against itself measured in the same run: equal within a factor of 3
    path.write_text('rules = [\n  "conv5x5.latency_ms <= 3 * conv5x5.latency_ms",\n'
                    '  "conv1x1-5x5.latency_ms <= 100 * conv5x5.latency_ms",\n]\n')
    verdicts = check(load_budget(path))
    assert all(v.passed and v.measured > 0 for v in verdicts)


def test_ctrl_c_keeps_what_was_measured(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    command = [sys.executable, "-m", "costlens", "profile", "resnet18", "--time", "--device", "cpu", "--layer-time", "2",
               "--peak-flops", "100G", "--bandwidth", "10G", "--save", "r.json", "--format", "json", "-o", "out.json"]
    # Ctrl-C as a terminal sends it: a test run started in the background (nohup, `&` without job
    # control) passes SIGINT on ignored, and Python then never turns it into KeyboardInterrupt
    child = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # wait until the per-layer replay has started
        time.sleep(1)
        if child.poll() is not None:
            break
        if time.monotonic() > deadline - 110:
            child.send_signal(signal.SIGINT)
            break
    stdout, stderr = child.communicate(timeout=120)
    assert child.returncode == 130, stderr
    assert "interrupted" in stderr
    if (tmp_path / "r.json").exists():  # interrupted during timing: what was measured is saved
        saved = json.loads((tmp_path / "r.json").read_text())
        assert saved["timing"]["interrupted"] is True


def test_a_device_file_that_is_not_a_regular_file_is_refused_at_once() -> None:
    result = _run(["device", "--device-file", "/dev/zero"])
    assert result.exit_code == 2
    assert result.stderr.strip() == ("costlens: error: /dev/zero: not a regular file "
                                     "(a device description is a small JSON file)")
