"""What the tracer's speed-ups must not change: results, the model as found, and imports.

The shape rules and the process-wide meta-result cache are short cuts; a profile taken
with them must equal one taken without, number for number and shape for shape.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from torch import nn

from costlens.api import profile
from costlens.count import kept, replay, shapes, tracer
from costlens.count.formulas import OpCost

ROOT_IMPORT = "import sys; sys.path.insert(0, {root!r})"


def _data(name_or_model: str | nn.Module, **options: object) -> dict:
    data = json.loads(profile(name_or_model, **options).to_json())  # type: ignore[arg-type]
    data.pop("environment")
    return data


@pytest.mark.parametrize("name, options", [
    ("resnet18", {}), ("googlenet", {}), ("lenet5-1998", {}), ("alexnet", {"train": True}),
    ("inception", {"dtype": "float16", "batch": 3}),
])
def test_a_profile_without_shape_rules_caches_or_replays_is_the_same(name: str, options: dict,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    fast = _data(name, **options)
    again = _data(name, **options)  # every layer call and op now cached
    tracer.clear_caches()
    monkeypatch.setattr(shapes, "RULES", {})
    monkeypatch.setattr(replay, "REPLAYABLE", frozenset())
    slow = _data(name, **options)
    tracer.clear_caches()  # what was cached without rules must not outlive this test
    assert fast == slow
    assert again == slow


def test_the_cache_tells_an_int_from_a_float_argument() -> None:
    class Scale(nn.Module):
        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            return torch.cat([ids * 2, (ids * 2.0).long()])  # int64 * 2 stays int64; * 2.0 is float32

    layers = profile(Scale(), ((4,), "int64")).layers
    # mul writes 4 int64 (32 B) then 4 float32 (16 B); _to_copy writes 4 int64 (32 B); cat 8 int64 (64 B)
    assert layers[0].activation_bytes == 32 + 16 + 32 + 64


def test_custom_formulas_stay_in_their_own_trace() -> None:
    def doubled(args: tuple, kwargs: dict, out: object) -> OpCost:
        return OpCost(0, 2 * out.numel())  # type: ignore[attr-defined]

    plain = profile("conv5x5").totals["flops"]
    custom = profile("conv5x5", formulas={"aten.convolution": doubled}).totals["flops"]
    assert custom == 2 * 28 * 28 * 32  # one output map of 28×28×32, two flops each
    assert profile("conv5x5").totals["flops"] == plain


class Hooked(nn.Module):
    """A conv whose own forward hook replaces its output, and a ReLU called twice."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.relu = nn.ReLU()
        self.conv.register_forward_hook(lambda module, args, out: out[:, :2] * 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.relu(self.conv(x)))


def test_a_module_with_hooks_is_traced_after_them_and_left_as_found() -> None:
    model = Hooked()
    before = [(dict(m.__dict__.get("_forward_hooks", {})), "forward" in m.__dict__) for m in model.modules()]
    layers = profile(model, (1, 3, 8, 8)).layers
    conv = next(layer for layer in layers if layer.path == "conv")
    assert conv.output_shapes == [[1, 2, 6, 6]]  # as its own hook left it
    assert conv.ops == {"aten.convolution": 1, "aten.slice": 1, "aten.mul": 1}  # the hook's ops are the conv's
    assert [layer.call for layer in layers if layer.path == "relu"] == [0, 1]
    after = [(dict(m.__dict__.get("_forward_hooks", {})), "forward" in m.__dict__) for m in model.modules()]
    assert after == before


def test_stand_in_forwards_are_removed_when_the_forward_raises() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Linear(5, 6))
    with pytest.raises(Exception, match="failed on input"):
        profile(model, (1, 3, 8, 8))
    assert not any("forward" in m.__dict__ for m in model.modules())


def test_a_module_calling_itself_through_forward_is_one_call() -> None:
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x: torch.Tensor, again: bool = True) -> torch.Tensor:
            x = self.fc(x)
            return self.forward(x, again=False) if again else x

    layers = profile(Twice(), (1, 4)).layers
    assert [(layer.path, layer.call) for layer in layers] == [("", 0), ("fc", 0), ("fc", 1)]


DRIFTING_CALLS = [0]


class Drifting(nn.Conv2d):
    """A Conv2d subclass whose forward changes from call to call (on state outside it): never replayed."""

    def __init__(self) -> None:
        super().__init__(2, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        DRIFTING_CALLS[0] += 1
        out = super().forward(x)
        return out * 2 if DRIFTING_CALLS[0] % 2 == 0 else out


def test_only_plain_layers_are_replayed() -> None:
    DRIFTING_CALLS[0] = 0
    with torch.device("meta"):  # weights on cpu would be swapped for meta stand-ins, and nothing replayed
        model = nn.Sequential(Drifting(), nn.ReLU())
    ops = [layer.ops for layer in profile(model, (1, 2, 3, 3)).layers] + [
        layer.ops for layer in profile(model, (1, 2, 3, 3)).layers]
    assert ops[1] == {"aten.convolution": 1}
    assert ops[4] == {"aten.convolution": 1, "aten.mul": 1}  # its second call, in the second profile


def test_a_replayed_layer_follows_its_configuration_and_returns_its_input_when_in_place() -> None:
    relu = nn.ReLU()

    class Checked(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.relu = relu

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.relu(x)
            assert (y is x) == self.relu.inplace
            return y

    model = Checked()
    assert profile(model, (2, 3)).layers[1].ops == {"aten.relu": 1}
    relu.inplace = True
    for _ in range(2):  # recorded, then replayed
        assert profile(model, (2, 3)).layers[1].ops == {"aten.relu_": 1}
    dropout = nn.Sequential(nn.Dropout(0.5))
    assert profile(dropout, (2, 3)).layers[1].ops == {}
    assert profile(dropout, (2, 3), train_mode=True).layers[1].ops != {}


def test_a_layer_changed_in_place_is_not_replayed_as_it_was() -> None:
    pool = nn.MaxPool2d(kernel_size=[2, 2])  # a list: it can change without the layer being told
    assert profile(pool, (1, 1, 8, 8)).layers[0].output_shapes == [[1, 1, 4, 4]]
    pool.kernel_size[0] = 4  # 8×8 pooled by 4×2 windows with stride 4×2 (stride defaults to the kernel)
    assert profile(pool, (1, 1, 8, 8)).layers[0].output_shapes == [[1, 1, 2, 4]]


def _fresh_python(code: str) -> str:
    root = str(__import__("pathlib").Path(__file__).resolve().parents[1])
    done = subprocess.run([sys.executable, "-c", ROOT_IMPORT.format(root=root) + "\n" + code],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_profile_never_imports_torch_dynamo() -> None:
    # batch norm, pooling, LRN, dropout, linear, cat: eval and train, float32 and float16
    out = _fresh_python(
        "from costlens.api import profile\n"
        "for name in ('resnet50', 'googlenet', 'alexnet', 'vgg16', 'lenet5-1998', 'nin', 'inception'):\n"
        "    profile(name); profile(name, train_mode=True)\n"
        "profile('resnet18', dtype='float16')\n"
        "print('torch._dynamo' in sys.modules)"
    )
    assert out == "False"


class _Pooled(nn.Module):
    """A 3×3 conv, a global mean, a linear layer: not a Sequential, so nothing in it is a block."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x).mean((2, 3)))


def test_a_model_changed_between_profiles_is_profiled_as_it_is_now() -> None:
    """The setup kept for a model's next trace (count/kept.py) must follow every change to it."""
    with torch.device("meta"):
        model = _Pooled()
        totals = [profile(model, (1, 3, 6, 6)).totals for _ in range(2)]
        # conv 8×3×3×3 + 8 = 224 parameters, linear 8×4 + 4 = 36; 4×4 outputs: 16 × 8 × 27 MACs, then 32
        assert [(t["params"], t["macs"]) for t in totals] == [(260, 3456 + 32)] * 2
        model.fc = nn.Linear(8, 10)  # a layer replaced: 90 parameters, 80 MACs
        assert (profile(model, (1, 3, 6, 6)).totals["params"], profile(model, (1, 3, 6, 6)).totals["macs"]) == (
            314, 3456 + 80)
        model.conv.weight.data = torch.empty(8, 3, 1, 1)  # the same parameter, a 1×1 kernel: 36 × 8 × 3 MACs
        result = profile(model, (1, 3, 6, 6))
        assert (result.totals["params"], result.totals["macs"]) == (24 + 8 + 90, 864 + 80)
        model.fc.weight.requires_grad_(False)
        assert profile(model, (1, 3, 6, 6)).totals["trainable_params"] == 24 + 8 + 10
        model.conv.register_buffer("scale", torch.empty(5, dtype=torch.float64))  # 5 × 8 bytes
        result = profile(model, (1, 3, 6, 6))
        assert (result.totals["buffers"], result.totals["weight_bytes"]) == (5, 122 * 4 + 5 * 4)
        model.fc.to(torch.float16)  # a float16 layer: stand-ins in float32 for the trace
        result = profile(model, (1, 3, 6, 6), dtype="float16")
        assert result.totals["weight_bytes"] == (122 + 5) * 2
        assert profile(model, (1, 3, 6, 6)).find("conv").flops == 2 * 864 + 288  # a MAC is 2 FLOPs, a bias add 1
        model.conv.register_forward_hook(lambda module, args, out: out * 2)  # one mul more over 1×8×6×6
        assert profile(model, (1, 3, 6, 6)).find("conv").flops == 2 * 864 + 288 + 288


def test_the_setup_kept_for_a_model_does_not_keep_it_alive() -> None:
    import gc
    import weakref

    with torch.device("meta"):
        models = [_Pooled(), nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())]  # the second one a block
    for _ in range(2):
        for model in models:
            profile(model, (1, 3, 6, 6))
    gone = [weakref.ref(model) for model in models]
    del model, models
    gc.collect()
    assert [ref() for ref in gone] == [None, None]


def test_a_whole_trace_kept_for_a_model_of_torch_layers_follows_inputs_hooks_and_modes() -> None:
    """Conv 3 → 4, 3×3 on 6×6: 4×4 outputs, 16 × 4 × 27 = 1,728 MACs an image; ReLU and dropout on 64 values."""
    def made() -> nn.Module:
        with torch.device("meta"):
            return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Dropout(), nn.Flatten())

    model = made()
    assert [profile(model, (1, 3, 6, 6)).root.macs for _ in range(4)] == [1728] * 4  # the last ones kept whole
    assert profile(model, (2, 3, 6, 6)).root.macs == 2 * 1728
    relu = profile(model, (1, 3, 6, 6)).find("1").flops
    handle = model[1].register_forward_hook(lambda module, args, out: out * 2)  # one mul more over 64 values
    assert profile(model, (1, 3, 6, 6)).find("1").flops == relu + 64
    handle.remove()
    assert profile(model, (1, 3, 6, 6)).find("1").flops == relu
    for train in (True, False, True):  # dropout runs otherwise in training mode
        fresh = _data(made(), inputs=(1, 3, 6, 6), train_mode=train)
        assert [_data(model, inputs=(1, 3, 6, 6), train_mode=train) for _ in range(2)] == [fresh, fresh]
    model[0].stride = (2, 2)  # 2×2 outputs
    assert profile(model, (1, 3, 6, 6)).root.macs == 4 * 4 * 27


def test_a_whole_trace_kept_for_a_model_follows_where_its_input_lies() -> None:
    """An input that is a view into a larger storage counts the bytes it spans, from the storage's start."""
    with torch.device("meta"):
        model = nn.Sequential(nn.ReLU())
    whole = torch.empty(4, 8, device="meta")
    # ReLU's output: 2×8 float32, 64 B. The input spans 64 B from offset 0, 128 B from offset 16 elements.
    peaks = [tracer.trace(model, [whole[:2]]).state["peak_bytes"] for _ in range(3)]
    later = [tracer.trace(model, [whole[2:]]).state["peak_bytes"] for _ in range(2)]
    assert peaks == [64 + 64] * 3 and later == [128 + 64] * 2


def _linears(kind: str) -> nn.Module:
    """Linear 4 → 4, ReLU, Linear 4 → 4: two layers, a weight shared, one layer twice, or no biases."""
    with torch.device("meta"):
        if kind == "twice":
            layer = nn.Linear(4, 4)
            return nn.Sequential(layer, nn.ReLU(), layer)
        if kind in ("aba", "abb"):  # alike but for which layer the third call is
            a, b = nn.Linear(4, 4), nn.Linear(4, 4)
            return nn.Sequential(a, b, a if kind == "aba" else b)
        model = nn.Sequential(nn.Linear(4, 4, bias=kind != "unbiased"), nn.ReLU(), nn.Linear(4, 4, bias=kind != "unbiased"))
        if kind == "tied":
            model[2].weight = model[0].weight
        return model


def test_models_built_alike_share_a_whole_trace_only_when_alike() -> None:
    """Each profile of a model built afresh (as by name) may take the whole trace of one built alike before."""
    tracer.clear_caches()
    expected = {  # (params, module calls as path and call); each linear call: 2 rows × 16 MACs
        "two": (2 * (16 + 4), [("", 0), ("0", 0), ("1", 0), ("2", 0)]),
        "tied": (16 + 4 + 4, [("", 0), ("0", 0), ("1", 0), ("2", 0)]),  # the shared weight counts once
        "twice": (16 + 4, [("", 0), ("0", 0), ("1", 0), ("0", 1)]),
        "unbiased": (2 * 16, [("", 0), ("0", 0), ("1", 0), ("2", 0)]),
        "aba": (2 * (16 + 4), [("", 0), ("0", 0), ("1", 0), ("0", 1)]),
        "abb": (2 * (16 + 4), [("", 0), ("0", 0), ("1", 0), ("1", 1)]),
    }
    for _ in range(2):
        for kind, (params, calls) in expected.items():
            result = profile(_linears(kind), (2, 4))
            assert (result.totals["params"], result.root.macs) == (params, 96 if kind in ("aba", "abb") else 64), kind
            assert [(layer.path, layer.call) for layer in result.layers] == calls, kind
    assert len(kept.WHOLE) == 6


def test_a_zoo_block_is_kept_whole_and_follows_its_configuration() -> None:
    """BasicBlock 4 → 4 on 1×4×8×8 (a zoo class whose forward reads only its structure, kept whole):
    two 3×3 convs, 64 positions × 4 outputs × 36 = 9,216 MACs each; the identity shortcut is one add
    over 256 values. Turning the shortcut off drops the add from the profiles after it."""
    from costlens.zoo.resnet import BasicBlock

    with torch.device("meta"):
        block = BasicBlock(4, 4, 1, shortcut=True, stride_on_3x3=False)
    first = [profile(block, (1, 4, 8, 8)).root for _ in range(3)]
    assert [(root.macs, root.ops.get("aten.add")) for root in first] == [(2 * 9216, 1)] * 3
    block.shortcut = False
    later = [profile(block, (1, 4, 8, 8)).root for _ in range(2)]
    assert [(root.macs, root.ops.get("aten.add"), root.flops) for root in later] == [
        (2 * 9216, None, first[0].flops - 256)] * 2


def test_a_subclass_or_a_patched_forward_of_a_zoo_class_is_traced_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    """The promise that a forward reads only structure is the class's own: a subclass that overrides
    forward (adding 1 to each of 2×3 values) is not taken for its base, nor is a base whose forward is
    replaced in the class. One add over 6 values: 6 FLOPs more."""
    from costlens.zoo.lenet import ScaledTanh

    class Shifted(ScaledTanh):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return super().forward(x) + 1

    plain = [profile(ScaledTanh(), (2, 3)).root.flops for _ in range(3)]
    shifted = [profile(Shifted(), (2, 3)).root.flops for _ in range(3)]
    assert shifted == [plain[0] + 6] * 3 and plain == [plain[0]] * 3
    kept = ScaledTanh()
    assert [profile(kept, (2, 3)).root.flops for _ in range(2)] == [plain[0]] * 2
    original = ScaledTanh.forward
    monkeypatch.setattr(ScaledTanh, "forward", lambda self, x: original(self, x) + 1)
    assert [profile(kept, (2, 3)).root.flops for _ in range(2)] == [plain[0] + 6] * 2


def test_a_torch_layer_whose_class_forward_is_replaced_is_traced_anew(monkeypatch: pytest.MonkeyPatch) -> None:
    """Libraries patch torch's layers in place: ReLU over 2×3 values made to add 1 after it
    counts one add over 6 values more, in a layer replayed before and in a model kept whole."""
    with torch.device("meta"):
        model = nn.Sequential(nn.ReLU(), nn.ReLU())
    before = [profile(model, (2, 3)).root.ops.get("aten.add") for _ in range(3)]
    original = nn.ReLU.forward
    monkeypatch.setattr(nn.ReLU, "forward", lambda self, x: original(self, x) + 1)
    after = [profile(model, (2, 3)).root.ops.get("aten.add") for _ in range(3)]
    assert before == [None] * 3 and after == [2] * 3


def test_a_trace_kept_for_a_plain_shape_follows_batch_dtypes_and_global_hooks() -> None:
    """Conv 3 → 4, 3×3 on 6×6: 16 positions × 4 outputs × 27 = 1,728 MACs an image, and an output of
    64 values an image (256 B in float32, 128 B in float16). Profiles after the first two take the
    trace kept for the shape given, which must still follow everything the input is made from."""
    with torch.device("meta"):
        model = nn.Sequential(nn.Conv2d(3, 4, 3))
    roots = [profile(model, (1, 3, 6, 6)).root for _ in range(4)]
    assert [(r.macs, r.activation_bytes) for r in roots] == [(1728, 256)] * 4
    assert [profile(model, (1, 3, 6, 6), batch=3).root.macs for _ in range(3)] == [3 * 1728] * 3
    assert [profile(model, (1, 3, 6, 6), dtype="float16").root.activation_bytes for _ in range(3)] == [128] * 3
    doubled = nn.modules.module.register_module_forward_hook(lambda module, args, out: out * 2)
    try:  # a hook on every module: one mul over the 64 outputs after the conv, one after the Sequential
        assert [profile(model, (1, 3, 6, 6)).root.ops.get("aten.mul") for _ in range(3)] == [2] * 3
    finally:
        doubled.remove()
    assert [profile(model, (1, 3, 6, 6)).root.ops.get("aten.mul") for _ in range(2)] == [None] * 2
    torch.set_default_dtype(torch.float64)
    try:  # the default dtype is part of what a kept trace depends on
        assert [profile(model, (1, 3, 6, 6)).root.macs for _ in range(3)] == [1728] * 3
    finally:
        torch.set_default_dtype(torch.float32)
