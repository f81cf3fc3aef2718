"""A training step counted from autograd's own backward ops: hand-derived backward MACs,
freezing, optimizer updates and state, and what autograd saves."""

from __future__ import annotations

import pytest
from torch import nn

from costlens.api import profile
from costlens.records import Profile


def small_net() -> nn.Sequential:
    """conv 3->8 (3x3, pad 1), ReLU, conv 8->8, flatten, linear 512->10 on a 1x3x8x8 input.

    Params: 8·3·3·3 + 8 = 224, 8·8·3·3 + 8 = 584, 10·512 + 10 = 5,130; 5,938 in all.
    Forward MACs: conv0 8·8·8 × 3·3·3 = 13,824; conv2 8·8·8 × 3·3·8 = 36,864; linear 10 × 512 = 5,120.
    """
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.Flatten(),
                         nn.Linear(8 * 8 * 8, 10))


def step(**options: object) -> Profile:
    return profile(small_net(), (1, 3, 8, 8), train=True, **options)  # type: ignore[arg-type]


def backward(result: Profile) -> dict[str, float]:
    return {layer.path: layer.backward_macs for layer in result.leaves() if layer.macs}


def test_backward_macs_are_input_and_weight_gradients_and_the_first_layer_has_no_input_gradient() -> None:
    result = step()
    # conv0: weight gradient only (the data needs no gradient) 13,824; conv2: input + weight 2 × 36,864;
    # linear: 2 × 5,120
    assert backward(result) == {"0": 13_824, "2": 73_728, "4": 10_240}
    assert result.totals["backward_macs"] == 13_824 + 73_728 + 10_240 == 97_792
    assert result.root.backward_macs == 97_792
    assert result.find("4").formula == "10 × 512 = 5,120"  # the forward's formula stays


def test_freezing_the_first_layer_drops_its_weight_gradient_and_every_input_gradient_below_the_next() -> None:
    result = step(freeze="0")
    # conv0 frozen: no gradient of its weight; conv2 is now the lowest trainable layer: no input gradient
    assert backward(result) == {"0": 0, "2": 36_864, "4": 10_240}
    assert result.totals["trainable_params"] == 5_938 - 224
    assert result.totals["frozen_params"] == 224
    assert result.totals["backward_macs_saved"] == 97_792 - (36_864 + 10_240)
    # grad and optimizer memory of conv0's 224 params (4 bytes each) and conv0's saved input (3·8·8·4 = 768 B)
    assert result.totals["train_memory_saved"] == 224 * 4 + 768


def test_freezing_a_middle_layer_keeps_its_input_gradient_for_the_layer_below() -> None:
    result = step(freeze="2")
    assert backward(result) == {"0": 13_824, "2": 36_864, "4": 10_240}


def test_freeze_until_freezes_everything_that_runs_before_and_precomputes_it() -> None:
    result = step(freeze_until="4")
    assert backward(result) == {"0": 0, "2": 0, "4": 5_120}  # weight gradient only
    assert result.totals["trainable_params"] == 5_130
    assert result.totals["precompute_macs"] == 13_824 + 36_864  # the frozen part's forward, per example
    assert result.totals["precompute_bytes"] == 512 * 4  # linear's input: 512 float32 per example


def test_a_glob_freezes_every_module_it_matches_and_the_model_is_left_as_found() -> None:
    net = nn.Sequential(small_net(), nn.Linear(10, 2))
    result = profile(net, (1, 3, 8, 8), train=True, freeze="0.*")
    assert result.totals["trainable_params"] == 10 * 2 + 2
    assert backward(result) == {"0.0": 0, "0.2": 0, "0.4": 0, "1": 20}  # 2 × 10 weight gradient only
    assert all(p.requires_grad for p in net.parameters())


def test_optimizer_state_bytes_by_hand() -> None:
    params = 5_938
    assert step(optimizer="sgd").totals["optimizer_state_bytes"] == 0
    assert step(optimizer="sgd-momentum").totals["optimizer_state_bytes"] == params * 4  # one buffer per param
    # Adam: exp_avg and exp_avg_sq per param, plus a 4-byte step counter per parameter tensor (6 tensors)
    assert step(optimizer="adam").totals["optimizer_state_bytes"] == 2 * params * 4 + 6 * 4


def test_update_flops_follow_each_optimizer_rule() -> None:
    params = 5_938
    assert step(optimizer="sgd").totals["update_flops"] == 2 * params  # p - lr·g
    assert step(optimizer="sgd-momentum").totals["update_flops"] == 4 * params  # b = m·b + g; p - lr·b
    # Adam per element: lerp 2, mul 1, addcmul 2, sqrt 1, div 1, add eps 1, addcdiv 2 = 10; one step add per tensor
    assert step(optimizer="adam").totals["update_flops"] == 10 * params + 6
    assert step(optimizer="sgd").find("4").update_flops == 2 * 5_130


def test_memory_of_a_step() -> None:
    result = step(optimizer="adam")
    assert result.totals["grad_bytes"] == 5_938 * 4
    # saved for backward: the input (3·8·8·4 = 768 B) for conv0's weight gradient, ReLU's output
    # (8·8·8·4 = 2,048 B; conv2 saves the same storage), conv2's output flattened for the linear layer (2,048 B)
    assert result.totals["saved_activation_bytes"] == 768 + 2_048 + 2_048
    assert result.find("1").saved_activation_bytes == 2_048
    assert result.totals["train_memory_bytes"] == 5_938 * 4 * 4 + 6 * 4 + 4_864  # weights, grads, 2 moments


def test_resnet18_backward_is_twice_the_forward_less_the_first_convs_input_gradient() -> None:
    result = profile("resnet18", train=True)
    # published forward 1,814,073,344 MACs; conv1 112·112·64 × 7·7·3 = 118,013,952 needs no input gradient
    assert result.totals["macs"] == 1_814_073_344
    assert result.totals["backward_macs"] == 2 * 1_814_073_344 - 118_013_952
    assert sum(layer.backward_macs for layer in result.leaves()) == result.totals["backward_macs"]


def test_a_training_profile_round_trips_through_json(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from costlens.records import load

    result = step(optimizer="adam", freeze="0")
    path = tmp_path / "step.json"
    path.write_text(result.to_json())
    again = load(path)
    assert again.totals == result.totals
    assert again.find("2").backward_macs == 36_864


def test_bad_freeze_and_optimizer_are_one_line_errors() -> None:
    from costlens.errors import InputShapeError

    with pytest.raises(InputShapeError, match="no module path matches"):
        step(freeze="features.*")
    with pytest.raises(InputShapeError, match="optimizer"):
        step(optimizer="lamb")
    with pytest.raises(InputShapeError, match="^freeze_until: no module call at 'nope'"):  # as Python spells it
        step(freeze_until="nope")


def test_the_command_prints_the_step_and_writes_its_page(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    from costlens.cli import cli

    monkeypatch.chdir(tmp_path)
    ran = CliRunner().invoke(cli, ["profile", "conv1x1-5x5", "--freeze", "reduce", "--optimizer", "adam",
                                   "--plotlyjs", "."], standalone_mode=False)
    assert ran.return_value == 0, ran.output
    assert "Backward MACs" in ran.output and "Precompute the frozen part once" in ran.output
    # the 1x1 conv frozen: the 5x5 conv's weight gradient only, 28·28·32 × 5·5·16 = 10,035,200
    assert '"backward_macs": 10035200' in (tmp_path / "reports" / "conv1x1-5x5-train-adam-frozen.json").read_text()
    assert "Backward MACs" in (tmp_path / "reports" / "conv1x1-5x5-train-adam-frozen.html").read_text()


def test_a_timed_step_is_measured_in_three_parts_that_add_up() -> None:
    result = step(time=True, device="cpu", optimizer="adam")
    t = result.totals
    assert t["backward_macs"] == 97_792  # counting does not change when the step is also timed
    assert t["step_ms"] > 0 and t["step_forward_ms"] > 0
    # backward and update are differences of medians: they and the forward add up to the step,
    # unless noise made a difference negative (then it is shown as 0 and the sum exceeds the step)
    assert t["step_forward_ms"] + t["step_backward_ms"] + t["step_update_ms"] >= t["step_ms"] * 0.999
    assert t["step_throughput"] == pytest.approx(1 / (t["step_ms"] / 1e3))  # batch 1
    assert result.timing is not None and set(result.timing["step"]) >= {"forward", "forward_backward", "step"}
    assert result.timing["optimizer"] == "adam"


def test_timing_a_step_with_everything_frozen_is_refused() -> None:
    from costlens.timing.device import DeviceError

    with pytest.raises(DeviceError, match="every parameter is frozen"):
        step(time=True, device="cpu", freeze="*")


def test_train_means_the_step_and_train_mode_only_the_forward(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import json

    from click.testing import CliRunner

    from costlens.cli import cli

    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    stepped = json.loads(runner.invoke(cli, ["profile", "conv5x5", "--train", "--format", "json"]).stdout)
    forward = json.loads(runner.invoke(cli, ["profile", "conv5x5", "--train-mode", "--format", "json"]).stdout)
    # conv5x5 alone: its input needs no gradient, so backward is the weight gradient only, 28·28·32 × 5·5·192
    assert stepped["totals"]["backward_macs"] == 120_422_400
    assert "backward_macs" not in forward["totals"]


def test_the_step_page_splits_each_layer_into_forward_backward_and_update(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from costlens.report.html import profile_page

    page = profile_page(step())
    assert 'data-chart="training-step"' in page and 'data-chart="training-totals"' in page
    assert "One training step per layer" in page and "memory when" in page


def test_train_and_train_mode_together_are_refused(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    from costlens.cli import cli

    monkeypatch.chdir(tmp_path)
    ran = CliRunner().invoke(cli, ["profile", "conv5x5", "--train", "--train-mode"])
    assert ran.exit_code == 2 and "choose one" in ran.stderr
    assert not (tmp_path / "reports").exists()


def test_a_layer_registered_twice_trains_once_and_the_model_keeps_its_own_parameters() -> None:
    import torch

    with torch.device("meta"):
        shared = nn.Linear(8, 8)
        model = nn.Sequential(shared, nn.ReLU(), shared, nn.Linear(8, 8))
    before = [id(p) for p in model.parameters()]
    result = profile(model, (2, 8), train=True)
    # batch 2, 8 -> 8 linears: each product is 2·8·8 = 128 MACs. Layer 3: input + weight gradients 256;
    # the shared layer's second call (path 2): 256; its first call (path 0): weight gradient only, 128
    assert result.totals["backward_macs"] == 640
    assert result.totals["grad_bytes"] == (72 + 72) * 4  # two distinct linears of 8·8 + 8 params
    assert [id(p) for p in model.parameters()] == before  # no stand-in left behind
