"""A training step in words: forward, backward and update; memory; what a freeze saves; the measured step."""

from __future__ import annotations

from costlens import metrics
from costlens.records import Profile


def step_summary(profile: Profile) -> str:
    """The step in words: forward/backward/update, memory, and what a freeze saves."""
    t = profile.totals
    fmt = {m.key: m for m in metrics.catalogue()}

    def show(key: str) -> str:  # exact figures are in the totals above
        return fmt[key].short(t[key])

    lines = [
        f"Training step: forward {show('flops')} FLOPs · backward {show('backward_flops')} FLOPs "
        f"({show('backward_macs')} MACs) · update {show('update_flops')} FLOPs · total {show('step_flops')} FLOPs",
        f"Memory: weights {fmt['weight_bytes'].short(t['weight_bytes'])} + gradients {fmt['grad_bytes'].short(t['grad_bytes'])}"
        f" + optimizer state {fmt['optimizer_state_bytes'].short(t['optimizer_state_bytes'])}"
        f" + saved activations {fmt['saved_activation_bytes'].short(t['saved_activation_bytes'])}"
        f" = {fmt['train_memory_bytes'].short(t['train_memory_bytes'])} when backward starts",
    ]
    if t.get("frozen_params"):
        lines.append(f"Frozen: {show('frozen_params')} params of {show('params')}; trainable {show('trainable_params')}")
    if "backward_macs_saved" in t:
        lines.append(f"Freezing saves {show('backward_macs_saved')} backward MACs and "
                     f"{fmt['train_memory_saved'].short(t['train_memory_saved'])} of training memory per step")
    if "precompute_macs" in t:
        lines.append(f"Precompute the frozen part once: {show('precompute_macs')} MACs and {show('precompute_bytes')} "
                     f"on disk per example; every later epoch skips those {show('precompute_macs')} MACs per example")
    if "step_ms" in t:
        lines.append(_measured(t))
    if (profile.timing or {}).get("interrupted"):
        lines.append("Interrupted: " + ("the step's figures are from the rounds timed before Ctrl-C" if "step_ms" in t
                                        else "Ctrl-C came before the step was timed; the counts above stand"))
    return "\n".join(lines) + "\n"


def _measured(t: dict[str, float]) -> str:
    """The timed step: its median and how it splits."""
    ms = metrics.get("step_ms")
    memory = (f"; needed {metrics.get('step_peak_memory_bytes').short(t['step_peak_memory_bytes'])} beyond "
              "the weights, gradients and state" if "step_peak_memory_bytes" in t else "")
    return (f"Measured: one step {ms.short(t['step_ms'])} (forward {ms.short(t['step_forward_ms'])}, backward "
            f"{ms.short(t['step_backward_ms'])}, update {ms.short(t['step_update_ms'])}), "
            f"{metrics.get('step_throughput').short(t['step_throughput'])} trained{memory}")
