"""One training step counted from the real backward ops: forward, backward, optimizer update, memory.

The forward is the ordinary trace (``costlens/count/tracer.py``, in training mode). This
module adds what a step costs beyond it, on meta tensors like everything else:

* **backward**: the model runs once more with gradients enabled, ``loss = sum(outputs)``,
  then ``loss.backward()``. A ``TorchDispatchMode`` sees every aten op autograd runs;
  ``torch._C._current_autograd_node()`` names the autograd node running it.
* **attribution**: a node belongs to the module call whose forward created it. When a
  call returns (forward hook) we walk the autograd graph back from its outputs and claim
  every node no call has claimed yet. Hooks of inner calls fire first, so a conv claims
  its ConvolutionBackward, and a residual block then claims only its own add; the walk
  stops at claimed nodes, so each node is visited once. This needs no backward hooks
  (which break on in-place ops such as ``ReLU(inplace=True)``) and no sequence numbers.
  Nodes created after the model returned (the loss) belong to the root.
* **saved activations**: ``saved_tensors_hooks`` sees every tensor autograd saves; it goes
  to the innermost call running, once per storage, parameters and buffers excluded.
* **update**: the real ``torch.optim`` optimizer steps on the meta parameters with their
  meta gradients; each module's own parameters get an optimizer of their own, so its
  ops are the module's. The second step is counted (SGD with momentum creates its
  buffer on the first step with a copy instead of the steady-state multiply-add).

Frozen parameters (``requires_grad=False``) get no gradient, so autograd skips their
weight gradients, and the input gradients below the lowest trainable layer, by itself.
"""

from __future__ import annotations

import contextlib
import fnmatch
import math
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from costlens import metrics
from costlens.count.calls import ModuleCalls
from costlens.count.formulas import (
    ATTENTION_KERNELS,
    FREE,
    Attention,
    Handler,
    OpCost,
    attention_sizes,
    named_arguments,
    rule_for,
)
from costlens.count.swap import swapped
from costlens.count.values import MetaValues, ReadingMode
from costlens.errors import InputShapeError, ModelError
from costlens.records import LayerCost, Profile, Uncounted

aten = torch.ops.aten

OPTIMIZERS = ("sgd", "sgd-momentum", "adam")

# Metrics this module fills in (the catalogue, costlens/metrics.py, gives them no per-op or
# per-tensor producer because the forward trace must not).
PRODUCED = (
    "backward_macs", "backward_flops", "update_flops", "saved_activation_bytes", "grad_bytes",
    "optimizer_state_bytes", "frozen_params", "step_flops", "train_memory_bytes", "backward_macs_saved",
    "train_memory_saved", "precompute_macs", "precompute_bytes",
)
_PER_CALL = ("backward_macs", "backward_flops", "saved_activation_bytes")
_PER_STATE = ("update_flops", "grad_bytes", "optimizer_state_bytes")


# --- cost rules of backward ops (the forward rules live in costlens/count/formulas.py) --------


def _conv_forward_macs(grad_output: torch.Tensor, input: torch.Tensor, weight: torch.Tensor, transposed: bool) -> int:
    """The forward's MACs, from the backward's arguments (see formulas.convolution)."""
    per_weight_row = math.prod(weight.shape[1:])
    return (input.numel() if transposed else grad_output.numel()) * per_weight_row


def convolution_backward(args: tuple, kwargs: dict, out: Any) -> OpCost:
    """grad_input and grad_weight are each one convolution as large as the forward (M MACs each);
    autograd asks only for those it needs (``output_mask``); grad_bias sums grad_output."""
    grad_output, input, weight = args[0], args[1], args[2]
    transposed, mask = bool(args[7]), list(args[10])
    forward = _conv_forward_macs(grad_output, input, weight, transposed)
    parts = [name for name, wanted in zip(("grad_input", "grad_weight"), mask[:2]) if wanted]
    macs = forward * len(parts)
    bias = grad_output.numel() if mask[2] else 0
    text = " + ".join(f"{name} {forward:,}" for name in parts) or None
    return OpCost(macs, 2 * macs + bias, text and f"{text} = {macs:,}")


def batch_norm_backward(args: tuple, kwargs: dict, out: Any) -> OpCost:
    """Per element: x̂ = (x - mean)·invstd (2), grad_beta = Σg (1), grad_gamma = Σ g·x̂ (2), and with
    an input gradient g·γ·invstd - mean terms (4 more): 9 with grad_input, 5 without."""
    mask = list(args[-1]) if isinstance(args[-1], (list, tuple)) else [True, True, True]
    return OpCost(0, (9 if mask[0] else 5) * args[0].numel())


def per_grad_element(flops_each: int) -> Handler:
    """Rule factory: ``flops_each`` per element of the incoming gradient (first argument)."""

    def handler(args: tuple, kwargs: dict, out: Any) -> OpCost:
        return OpCost(0, flops_each * args[0].numel())

    return handler


def per_result_element(flops_each: int) -> Handler:
    """Rule factory: ``flops_each`` per element of the gradient computed (the result)."""

    def handler(args: tuple, kwargs: dict, out: Any) -> OpCost:
        first = out if isinstance(out, torch.Tensor) else out[0]
        return OpCost(0, flops_each * first.numel())

    return handler


def scaled_add(args: tuple, kwargs: dict, out: Any) -> OpCost:
    """``a + alpha·b``: one add per element, one multiply more when alpha is not 1 (SGD's
    ``param.add_(grad, alpha=-lr)`` is 2 per parameter)."""
    alpha = kwargs.get("alpha", args[2] if len(args) > 2 else 1)
    first = out if isinstance(out, torch.Tensor) else out[0]
    return OpCost(0, (1 if alpha == 1 else 2) * first.numel())


def _free(args: tuple, kwargs: dict, out: Any) -> OpCost:
    return FREE


def attention_backward_cost(sizes: Attention, grads: Sequence[bool], *, dropout: bool) -> OpCost:
    """Attention's backward, counted as autograd runs torch's math decomposition on meta (see
    formulas.attention_cost), for the gradients wanted (query, key, value).

    MACs per score: dV = Pᵀ·dO (Ev), dP = dO·Vᵀ (Ev, for dQ or dK), dQ = dS·K (E), dK = dSᵀ·Q (E).
    FLOPs: 2 per MAC; softmax's backward, 4 per score (dP·P, the row sum, subtract, times P);
    dropout's mask again, 1 per score; dQ and dK scaled by √scale, 1 per row element; and where
    key/value heads are shared (GQA), the gradients of the expanded keys and values summed back,
    1 per element. A flash kernel also recomputes QKᵀ (E MACs per score more): not counted,
    as the decomposition does not."""
    want_q, want_k, want_v = grads
    scores, width, v_width = sizes.scores, sizes.qk_dim, sizes.v_dim
    through_scores = want_q or want_k
    parts = [(name, scores * size) for name, size, wanted in (
        ("dV", v_width, want_v), ("dP", v_width, through_scores), ("dQ", width, want_q), ("dK", width, want_k))
        if wanted]
    macs = sum(m for _, m in parts)
    flops = 2 * macs + (4 + int(dropout)) * scores * through_scores
    flops += sizes.query_rows * width * want_q + sizes.key_rows * width * want_k
    if sizes.kv_heads != sizes.query_heads:
        flops += sizes.key_rows * (width * want_k + v_width * want_v)
    text = " + ".join(f"{name} {m:,}" for name, m in parts)
    return OpCost(macs, flops, text and f"{text} = {macs:,}")


def attention_backward(op: Any, heads_first: bool) -> Handler:
    """Rule factory for a fused attention op's backward (``grad_input_mask`` says which gradients
    are wanted where the op takes one; else all three)."""

    def handler(args: tuple, kwargs: dict, out: Any) -> OpCost:
        named = named_arguments(op, args, kwargs)
        wanted = list(named.get("grad_input_mask") or (True, True, True))[:3]
        dropout = float(named.get("dropout_p") or 0.0) > 0
        return attention_backward_cost(attention_sizes(named, heads_first=heads_first), wanted, dropout=dropout)

    return handler


def softmax_backward(args: tuple, kwargs: dict, out: Any) -> OpCost:
    """Softmax's input gradient y·(g - Σ g·y): 4 per element (multiply, sum, subtract, multiply);
    log-softmax's g - exp(y)·Σg likewise 4 (exp, sum, multiply, subtract)."""
    return OpCost(0, 4 * args[0].numel())


BACKWARD_RULES: dict[Any, Handler] = {
    aten.convolution_backward: convolution_backward,
    aten.native_batch_norm_backward: batch_norm_backward,
    # max pooling routes each gradient to the position that won: one add per incoming element
    aten.max_pool2d_with_indices_backward: per_grad_element(1),
    # average pooling spreads each gradient over its window: one divide per input element
    aten.avg_pool2d_backward: per_result_element(1),
    aten._adaptive_avg_pool2d_backward: per_result_element(1),
    # ReLU's gradient: a comparison and a select per element
    aten.threshold_backward: per_grad_element(1),
    aten.native_dropout_backward: per_grad_element(1),
    aten.add: scaled_add, aten.add_: scaled_add,
    # Adam's first moment: exp_avg + (grad - exp_avg)·(1 - beta1), a subtract and a multiply-add
    aten.lerp_: per_result_element(2),
    aten.new_empty_strided: _free, aten.new_zeros: _free, aten.new_empty: _free,
}
for _name in ("batch_norm_backward", "cudnn_batch_norm_backward", "miopen_batch_norm_backward"):
    if hasattr(aten, _name):
        BACKWARD_RULES[getattr(aten, _name)] = batch_norm_backward
# Every fused attention op's backward, where this torch has it (the forward ops: formulas.ATTENTION_KERNELS).
for _kernel in ATTENTION_KERNELS:
    if _kernel.backward is not None and hasattr(aten, _kernel.backward):
        _op = getattr(aten, _kernel.backward)
        BACKWARD_RULES[_op] = attention_backward(_op, _kernel.heads_first)
BACKWARD_RULES[aten._softmax_backward_data] = softmax_backward
BACKWARD_RULES[aten._log_softmax_backward_data] = softmax_backward
# Layer, group and RMS norm's backward as batch norm's: 9 per element with an input gradient, 5 without.
for _name in ("native_layer_norm_backward", "native_group_norm_backward", "_fused_rms_norm_backward"):
    if hasattr(aten, _name):
        BACKWARD_RULES[getattr(aten, _name)] = batch_norm_backward
# A smooth activation's gradient g·f'(x): the derivative, one per element as the forward, then the
# multiply by g. Piecewise-linear ones pick a slope per element: one, as ReLU's.
for _name in ("gelu_backward", "silu_backward", "tanh_backward", "sigmoid_backward", "mish_backward", "elu_backward",
              "softplus_backward", "hardswish_backward"):
    if hasattr(aten, _name):
        BACKWARD_RULES[getattr(aten, _name)] = per_grad_element(2)
for _name in ("hardtanh_backward", "leaky_relu_backward", "hardsigmoid_backward"):
    if hasattr(aten, _name):
        BACKWARD_RULES[getattr(aten, _name)] = per_grad_element(1)
# The embedding's weight gradient: each row of the incoming gradient added into its token's row.
BACKWARD_RULES[aten.embedding_dense_backward] = per_grad_element(1)
# A slice's or a selected index's gradient: zeros with the incoming gradient copied in.
BACKWARD_RULES[aten.select_backward] = _free
BACKWARD_RULES[aten.slice_backward] = _free


def _rule(func: Any) -> Handler | None:
    packet = func.overloadpacket
    return BACKWARD_RULES.get(packet) or rule_for(packet)


# --- counting ----------------------------------------------------------------------------


@dataclass
class _Sums:
    macs: int = 0
    flops: int = 0
    ops: Counter = field(default_factory=Counter)


class _OpCounter(TorchDispatchMode):
    """Counts each aten op into the bucket ``where()`` names at the moment it runs."""

    def __init__(self, where: Any) -> None:
        super().__init__()
        self.where = where
        self.buckets: dict[Any, _Sums] = {}
        self.uncounted: dict[str, tuple[int, set]] = {}

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        return False  # nothing is compiled here; see costlens/count/tracer.py

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if func.namespace != "aten":
            return out  # profiler markers of torch.optim
        bucket = self.where()
        rule = _rule(func)
        cost = rule(args, kwargs, out) if rule is not None else FREE
        sums = self.buckets.setdefault(bucket, _Sums())
        sums.macs += cost.macs
        sums.flops += cost.flops
        name = f"aten.{func.overloadpacket.__name__}"
        sums.ops[name] += 1
        if rule is None:
            count, where = self.uncounted.get(name, (0, set()))
            where.add(bucket)
            self.uncounted[name] = (count + 1, where)
        return out


class _Recorder(ModuleCalls):
    """Module calls of the gradient pass (``count/calls.py``), the autograd nodes each created,
    and the bytes each saved for backward."""

    def __init__(self, modules: list[tuple[str, nn.Module]], excluded_storages: set[int]) -> None:
        super().__init__(modules)
        self.owner: dict[Any, int] = {}  # autograd node -> position of the call that created it
        self.saved: Counter = Counter()  # call position -> bytes saved for backward
        self.seen_storages = set(excluded_storages)

    def closed(self, position: int, module: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
        self.claim([t.grad_fn for t in _tensors(output) if t.grad_fn is not None], position)

    def claim(self, roots: list[Any], position: int) -> None:
        """Every node reachable from ``roots`` that no call has claimed yet belongs to this call."""
        pending = [n for n in roots if n not in self.owner]
        while pending:
            node = pending.pop()
            if node in self.owner:
                continue
            self.owner[node] = position
            pending.extend(n for n, _ in node.next_functions if n is not None and n not in self.owner)

    def pack(self, tensor: torch.Tensor) -> torch.Tensor:
        """A tensor autograd saves: its storage's bytes go to the innermost call, once."""
        storage = tensor.untyped_storage()  # torch keeps one Python object per live storage
        key = id(storage)
        position = self.innermost()
        if key not in self.seen_storages and position is not None:
            self.seen_storages.add(key)
            self.saved[position] += storage.nbytes()
        return tensor


def differentiable_outputs(output: Any) -> list[torch.Tensor]:
    """The tensors of a forward's output that the step's loss sums: floating point, needing a gradient."""
    return [t for t in _tensors(output) if t.requires_grad and t.is_floating_point()]


def _tensors(value: Any) -> Iterator[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensors(item)
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from _tensors(item)


@contextlib.contextmanager
def _training_mode(model: nn.Module) -> Iterator[None]:
    modes = {m: m.training for m in model.modules()}
    try:
        model.train(True)
        yield
    finally:
        for module, mode in modes.items():
            module.training = mode


def _stand_ins(model: nn.Module, dtype: torch.dtype) -> dict[int, torch.Tensor]:
    """Meta copies of every parameter (trainable as the original) and buffer, by the original's
    id: a tensor shared by two modules gets one copy."""
    by_id: dict[int, torch.Tensor] = {}
    for tensor in [*model.parameters(), *model.buffers()]:
        if id(tensor) not in by_id:
            want = dtype if tensor.is_floating_point() else tensor.dtype
            copy = torch.empty_strided(tensor.shape, tensor.stride(), dtype=want, device="meta")  # empty_like's
            # meta path is a Python reference that imports sympy
            if isinstance(tensor, nn.Parameter) and tensor.requires_grad:
                copy.requires_grad_(True)
            by_id[id(tensor)] = copy
    return by_id


# --- the step -----------------------------------------------------------------------------


@dataclass
class StepCounts:
    """What one training step adds to the forward's records: values per (path, call) and totals."""

    per_call: dict[tuple[str, int], dict[str, int]]
    per_path: dict[str, dict[str, int]]  # state-like values (update, gradients, optimizer state)
    totals: dict[str, int]
    uncounted: list[Uncounted]


def count_step(model: nn.Module, args: Sequence[Any], kwargs: dict[str, Any], *, dtype: torch.dtype,
               optimizer: str = "sgd") -> StepCounts:
    """Count backward and update of one step of ``model`` on meta (parameters as their
    ``requires_grad`` says). ``args``/``kwargs``: the inputs, on meta."""
    if optimizer not in OPTIMIZERS:
        raise InputShapeError(f"optimizer: expected one of {', '.join(OPTIMIZERS)}, got {optimizer!r}")
    by_id = _stand_ins(model, dtype)
    recorder = _Recorder(list(model.named_modules()), {id(t.untyped_storage()) for t in by_id.values()})
    try:
        with _training_mode(model), recorder.watching(), torch.enable_grad(), \
                torch.autograd.graph.saved_tensors_hooks(recorder.pack, lambda t: t), swapped(model, by_id), \
                ReadingMode(MetaValues(strict=False)):
            output = model(*args, **kwargs)
    except ModelError:
        raise
    except Exception as error:  # the user's forward can raise anything
        raise ModelError(f"the model's forward with gradients failed: {error}") from error
    outputs = differentiable_outputs(output)
    backward = _backward(outputs, recorder)
    update_uncounted: dict[str, tuple[int, set]] = {}
    update, state_bytes = _update(model, by_id, optimizer, update_uncounted)
    counts = _assemble(model, recorder, backward, update, state_bytes, by_id)
    counts.uncounted += [Uncounted(f"{op} (update)", count, sorted(paths))
                         for op, (count, paths) in sorted(update_uncounted.items())]
    return counts


def _backward(outputs: list[torch.Tensor], recorder: _Recorder) -> _OpCounter:
    """Run backward of ``sum(outputs)``, counting each op into the call whose node runs it."""
    root = 0

    def where() -> int:
        node = torch._C._current_autograd_node()
        return recorder.owner.get(node, root) if node is not None else root

    counter = _OpCounter(where)
    if not outputs:
        return counter  # nothing trainable: no backward at all
    loss = sum(t.sum() for t in outputs)  # its nodes belong to the root call
    assert isinstance(loss, torch.Tensor)
    with counter:
        loss.backward()
    return counter


# The optimizers a step is counted (and timed, costlens/timing/step.py) with, by name.
OPTIMIZER_OF = {
    "sgd": lambda ps: torch.optim.SGD(ps, lr=0.01),
    "sgd-momentum": lambda ps: torch.optim.SGD(ps, lr=0.01, momentum=0.9),
    "adam": lambda ps: torch.optim.Adam(ps, lr=0.001),
}


def _update(model: nn.Module, by_id: dict[int, torch.Tensor], optimizer: str,
            uncounted: dict[str, tuple[int, set]]) -> tuple[dict[str, _Sums], dict[str, int]]:
    """Each module's own trainable parameters stepped by an optimizer of their own: FLOPs of the
    second (steady-state) step, and the bytes of the state it keeps, per module path. Ops with no
    rule are added to ``uncounted`` (op -> count, module paths)."""
    sums: dict[str, _Sums] = {}
    state_bytes: dict[str, int] = {}
    seen: set[int] = set()
    for path, module in model.named_modules():
        own = [by_id[id(p)] for p in module.parameters(recurse=False) if id(p) not in seen]
        seen.update(id(p) for p in module.parameters(recurse=False))
        own = [p for p in own if p.grad is not None]
        if not own:
            continue
        step = OPTIMIZER_OF[optimizer](own)
        step.step()  # creates the state
        counter = _OpCounter(lambda bucket=path: bucket)
        with counter:
            step.step()
        sums[path] = counter.buckets.get(path, _Sums())
        for op, (count, _) in counter.uncounted.items():
            known = uncounted.get(op, (0, set()))
            uncounted[op] = (known[0] + count, known[1] | {path})
        state_bytes[path] = sum(t.numel() * t.element_size() for s in step.state.values() for t in s.values()
                                if isinstance(t, torch.Tensor))
    return sums, state_bytes


def _assemble(model: nn.Module, recorder: _Recorder, backward: _OpCounter, update: dict[str, _Sums],
              state_bytes: dict[str, int], by_id: dict[int, torch.Tensor]) -> StepCounts:
    calls = recorder.calls
    own = [{"backward_macs": 0, "backward_flops": 0, "saved_activation_bytes": recorder.saved[i]}
           for i in range(len(calls))]
    for index, sums in backward.buckets.items():
        if calls:
            own[index]["backward_macs"] += sums.macs
            own[index]["backward_flops"] += sums.flops
    for index in range(len(calls) - 1, 0, -1):  # children come after their parent: roll up
        parent = calls[index].parent
        if parent is not None:
            for key, value in own[index].items():
                own[parent][key] += value
    per_call = {(c.path, c.call_index): own[i] for i, c in enumerate(calls)}
    per_path = _state_values(model, update, state_bytes, by_id)
    root = own[0] if own else dict.fromkeys(_PER_CALL, 0)
    totals = {**root, **per_path.get("", dict.fromkeys(_PER_STATE, 0))}
    uncounted = [Uncounted(f"{op} (backward)", count, sorted(calls[i].path for i in where))
                 for op, (count, where) in sorted(backward.uncounted.items())]
    return StepCounts(per_call, per_path, totals, uncounted)


def _state_values(model: nn.Module, update: dict[str, _Sums], state_bytes: dict[str, int],
                  by_id: dict[int, torch.Tensor]) -> dict[str, dict[str, int]]:
    """Update FLOPs, gradient and optimizer-state bytes of every module, its children included."""
    values: dict[str, dict[str, int]] = {}
    seen: set[int] = set()
    for path, module in model.named_modules():
        grads = 0
        for p in module.parameters(recurse=False):
            if id(p) in seen:
                continue
            seen.add(id(p))
            grad = by_id[id(p)].grad
            grads += grad.numel() * grad.element_size() if grad is not None else 0
        mine = {"update_flops": update[path].flops if path in update else 0, "grad_bytes": grads,
                "optimizer_state_bytes": state_bytes.get(path, 0)}
        parts = path.split(".") if path else []
        for prefix in (".".join(parts[:i]) for i in range(len(parts) + 1)):
            into = values.setdefault(prefix, dict.fromkeys(_PER_STATE, 0))
            for key, value in mine.items():
                into[key] += value
    return values


# --- freezing -------------------------------------------------------------------------------


def frozen_parameters(model: nn.Module, patterns: Sequence[str] = (), until: str | None = None,
                      order: Sequence[str] = (), arguments: tuple[str, str] = ("--freeze", "--freeze-until")) -> set[str]:
    """Names of the parameters a freeze covers: every parameter of a module whose path matches a
    glob of ``patterns`` (``'features.*'``), and with ``until``, the own parameters of every module
    that ran before module ``until`` (``order``: module paths in the order their calls began).
    A glob or an ``until`` that freezes no parameter is refused, naming ``arguments`` (the freeze
    and the until as the front door spells them): a freeze that freezes nothing is a mistake."""
    modules = dict(model.named_modules())
    frozen: set[str] = set()
    for pattern in patterns:
        matched = [p for p in modules if p and fnmatch.fnmatchcase(p, pattern)]
        if not matched:
            raise InputShapeError(f"{arguments[0]}: no module path matches {pattern!r} (e.g. {_examples(modules)})")
        covered = {f"{path}.{name}" for path in matched for name, _ in modules[path].named_parameters()}
        if not covered:
            shown = ", ".join(matched[:3]) + (f" and {len(matched) - 3} more" if len(matched) > 3 else "")
            raise InputShapeError(f"{arguments[0]}: {pattern!r} matches only modules without parameters ({shown}): "
                                  "nothing to freeze")
        frozen |= covered
    if until is not None:
        if until not in modules or until not in order:
            raise InputShapeError(f"{arguments[1]}: no module call at {until!r} (e.g. {_examples(modules)})")
        ancestors = {until.rsplit(".", i)[0] for i in range(1, until.count(".") + 1)} | {""}
        before: set[str] = set()
        for path in order[:list(order).index(until)]:
            if path not in ancestors and not path.startswith(until + "."):
                prefix = f"{path}." if path else ""
                before.update(prefix + name for name, _ in modules[path].named_parameters(recurse=False))
        if not before:
            raise InputShapeError(f"{arguments[1]}: no module with parameters runs before {until!r}: nothing to freeze")
        frozen |= before
    return frozen


def _examples(modules: dict[str, nn.Module]) -> str:
    return ", ".join(p for p in list(modules)[1:4]) or "no submodules"


@contextlib.contextmanager
def frozen(model: nn.Module, names: set[str]) -> Iterator[None]:
    """Parameters ``names`` need no gradient inside the block; every flag restored after."""
    flags = {p: p.requires_grad for p in model.parameters()}
    try:
        for name, parameter in model.named_parameters():
            if name in names:
                parameter.requires_grad_(False)
        yield
    finally:
        for parameter, flag in flags.items():
            parameter.requires_grad_(flag)


# --- the training profile ----------------------------------------------------------------------


def attach(profile: Profile, counts: StepCounts, *, optimizer: str, freeze_text: str | None,
           unfrozen: StepCounts | None = None) -> Profile:
    """``profile`` (a training-mode forward trace) with the step's metrics in every record and total."""
    keys = [m.key for m in metrics.catalogue()]
    layers = [_with_step(layer, counts, keys) for layer in profile.layers]
    totals = dict(profile.totals)
    totals.update(counts.totals)
    totals["frozen_params"] = int(totals.get("params", 0) - totals.get("trainable_params", 0))
    totals["step_flops"] = int(totals["flops"] + totals["backward_flops"] + totals["update_flops"])
    totals["train_memory_bytes"] = _memory(totals)
    if freeze_text is not None:
        totals.update(_precompute(replace(profile, layers=layers)))
        if unfrozen is not None:
            full = {**profile.totals, **unfrozen.totals}
            totals["backward_macs_saved"] = int(unfrozen.totals["backward_macs"] - totals["backward_macs"])
            totals["train_memory_saved"] = _memory(full) - totals["train_memory_bytes"]
    ordered = {k: totals[k] for k in keys if k in totals}
    note = (f" Training step: forward in training mode, loss = sum of the outputs, backward counted from the ops "
            f"autograd ran, update from torch.optim ({optimizer}, a steady-state step)"
            + (f"; frozen: {freeze_text}." if freeze_text else "."))
    return replace(profile, layers=layers, totals=ordered, convention=profile.convention + note,
                   uncounted=[*profile.uncounted, *counts.uncounted])


def _memory(totals: dict[str, float]) -> int:
    return int(totals["weight_bytes"] + totals["grad_bytes"] + totals["optimizer_state_bytes"]
               + totals["saved_activation_bytes"])


def _with_step(layer: LayerCost, counts: StepCounts, keys: list[str]) -> LayerCost:
    values = dict(layer.values)
    values.update(counts.per_call.get((layer.path, layer.call), dict.fromkeys(_PER_CALL, 0)))
    values.update(counts.per_path.get(layer.path, dict.fromkeys(_PER_STATE, 0)))
    return replace(layer, values={k: values[k] for k in keys if k in values})


def _precompute(profile: Profile) -> dict[str, int]:
    """The frozen part's cost, when outputs are precomputed once: the MACs per example of every
    leaf call before the first one with trainable parameters, and that call's input bytes per example."""
    leaves = profile.leaves()
    first = next((i for i, layer in enumerate(leaves) if layer.values.get("grad_bytes")), None)
    if first is None or first == 0 or not leaves[first].input_shapes:
        return {}
    batch = max(1, profile.input_shape[0] if profile.input_shape else 1)
    shape = leaves[first].input_shapes[0]
    element = torch.empty((), dtype=getattr(torch, profile.dtype)).element_size()
    return {"precompute_macs": int(sum(layer.values.get("macs", 0) for layer in leaves[:first]) // batch),
            "precompute_bytes": int(math.prod(shape[1:]) * element)}
