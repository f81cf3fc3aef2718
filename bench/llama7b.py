"""A Llama-shaped 7B decoder (and a 70B-shaped one) counted on meta at 2048 tokens, beside the peers.

Run:  .venv/bin/python bench/llama7b.py [--tokens 2048] [--models 7b,70b] [--mask] [--json out.json]
      bench/.venv-calflops/bin/python bench/llama7b.py     (adds calflops: bash bench/calflops-env.sh)

Issue 19's benchmark. Each model is built from its `transformers` config (LlamaForCausalLM, untied
head) and counted by each tool in a fresh process:

* **costlens**: built inside ``costlens.count.metabuild.building_on_meta()``, ``costlens.profile``;
* **FlopCounterMode on meta**: built inside ``torch.device("meta")``, run on meta token ids;
* **FlopCounterMode under FakeTensorMode**: built and run inside ``FakeTensorMode()`` (fake cpu
  tensors: SDPA then takes its cpu kernel, which FlopCounterMode has no formula for);
* **calflops** (when the interpreter has it): ``calculate_flops`` on the meta model.

For each: wall time beyond imports (build and count, `time.perf_counter`) and the peak memory it adds
to the process after its imports (VmHWM - VmRSS from /proc/self/status), medians of ``--runs`` fresh
processes per tool, the tools interleaved, and costlens's time over FlopCounterMode's on meta. Params and MACs are checked
against the hand arithmetic of ``expected`` below; FlopCounterMode's figure is FLOPs at 2 per MAC of
products only, so its half is set beside costlens's MACs. ``--mask`` feeds an all-ones attention mask
as well: today every meta trace stops at `transformers`' value read of it (issue 19 part 2).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Shape:
    """A Llama-shaped decoder: width d, L layers, H query heads and Hkv key/value heads of width d/H,
    MLP width I (gate, up and down projections), vocabulary V, an untied output head."""

    hidden: int
    layers: int
    heads: int
    kv_heads: int
    intermediate: int
    vocab: int = 32000

    def config(self) -> dict[str, object]:
        return {"hidden_size": self.hidden, "num_hidden_layers": self.layers, "num_attention_heads": self.heads,
                "num_key_value_heads": self.kv_heads, "intermediate_size": self.intermediate,
                "vocab_size": self.vocab, "tie_word_embeddings": False}


MODELS = {
    "7b": Shape(4096, 32, 32, 32, 11008),  # Llama (2) 7B
    "70b": Shape(8192, 80, 64, 8, 28672),  # Llama 2 70B: 8 key/value heads
}


def expected(shape: Shape, tokens: int) -> dict[str, int]:
    """Params and MACs by hand.

    Per layer: q and o projections d·d each, k and v d·(Hkv·d/H) each, gate/up/down d·I each, two
    RMS norms of d weights. Params = V·d (embedding) + L·(2·d² + 2·d·Hkv·d/H + 3·d·I + 2·d) + d (final
    norm) + d·V (head). 7B: 131,072,000 + 32·202,383,360 + 4,096 + 131,072,000 = 6,738,415,616.

    MACs at T tokens: every weight of a projection once per token, T·(2·d² + 2·d·Hkv·d/H + 3·d·I) per
    layer; attention's QKᵀ and scores·V, H·T·T·(d/H + d/H) per layer (the full score matrix, causal or
    not); the head T·d·V. 7B at 2048: 32·(414,464,344,064 + 34,359,738,368) + 268,435,456,000
    = 14,630,806,093,824."""
    d, width = shape.hidden, shape.hidden // shape.heads
    projections = 2 * d * d + 2 * d * shape.kv_heads * width + 3 * d * shape.intermediate
    params = shape.vocab * d + shape.layers * (projections + 2 * d) + d + d * shape.vocab
    attention = shape.heads * tokens * tokens * 2 * width
    macs = shape.layers * (tokens * projections + attention) + tokens * d * shape.vocab
    return {"params": params, "macs": macs}


CHILD = r"""
import json, sys, time
def rss(field):
    for line in open('/proc/self/status'):
        if line.startswith(field):
            return int(line.split()[1]) * 1024
tool, config, tokens, mask = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == 'mask'
import torch, transformers
from torch.utils.flop_counter import FlopCounterMode
Llama, Config = transformers.LlamaForCausalLM, transformers.LlamaConfig  # transformers imports lazily
if tool == 'costlens':
    import costlens
    from costlens.count.metabuild import building_on_meta
elif tool == 'calflops':
    from calflops import calculate_flops
else:
    from torch._subclasses.fake_tensor import FakeTensorMode
Llama(Config(hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8, vocab_size=8))
base, start, found = rss('VmRSS'), time.perf_counter(), {}
try:
    if tool == 'costlens':
        with building_on_meta():
            model = Llama(Config(**config))
        inputs = {'input_ids': costlens.Input((1, tokens), 'int64')}
        if mask:
            inputs['attention_mask'] = torch.ones(1, tokens, dtype=torch.int64)
        result = costlens.profile(model, inputs)
        found = {'params': result.totals['params'], 'macs': result.totals['macs'], 'flops': result.totals['flops'],
                 'uncounted': [u.op for u in result.uncounted]}
    elif tool == 'flopcounter-fake':
        with FakeTensorMode():
            model = Llama(Config(**config))
            ids = torch.zeros(1, tokens, dtype=torch.int64)
            extra = {'attention_mask': torch.ones(1, tokens, dtype=torch.int64)} if mask else {}
            with FlopCounterMode(display=False) as counter, torch.no_grad():
                model(input_ids=ids, **extra)
        found = {'params': sum(p.numel() for p in model.parameters()), 'flops': counter.get_total_flops()}
    else:
        with torch.device('meta'):
            model = Llama(Config(**config))
        ids = torch.zeros(1, tokens, dtype=torch.int64, device='meta')
        extra = {'attention_mask': torch.ones(1, tokens, dtype=torch.int64, device='meta')} if mask else {}
        if tool == 'calflops':
            flops, macs, params = calculate_flops(model=model, kwargs={'input_ids': ids, **extra},
                                                  output_as_string=False, print_results=False)
            found = {'params': params, 'macs': macs, 'flops': flops}
        else:
            with FlopCounterMode(display=False) as counter, torch.no_grad():
                model(input_ids=ids, **extra)
            found = {'params': sum(p.numel() for p in model.parameters()), 'flops': counter.get_total_flops()}
except Exception as error:
    found = {'error': f'{type(error).__name__}: {str(error).splitlines()[0][:200]}'}
found.update(seconds=time.perf_counter() - start, extra_mb=(rss('VmHWM') - base) / 1e6)
print(json.dumps(found))
"""

TOOLS = ("costlens", "flopcounter-meta", "flopcounter-fake", "calflops")


def _has_calflops() -> bool:
    done = subprocess.run([sys.executable, "-c", "import calflops"], capture_output=True)
    return done.returncode == 0


def run(tool: str, shape: Shape, tokens: int, mask: bool) -> dict[str, object]:
    """One tool on one model in a fresh process: what it found, its time and added memory."""
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "TRANSFORMERS_VERBOSITY": "error"}
    done = subprocess.run([sys.executable, "-c", CHILD, tool, json.dumps(shape.config()), str(tokens),
                           "mask" if mask else "plain"], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        return {"error": f"exit {done.returncode}: {done.stderr.strip().splitlines()[-1:]}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _line(tool: str, found: dict[str, object], hand: dict[str, int]) -> str:
    if "error" in found:
        return f"  {tool:18s} {found.get('seconds', 0):6.2f} s  {found.get('extra_mb', 0):7.1f} MB  fails: {found['error']}"
    params = found.get("params")
    macs = found.get("macs")
    if macs is None and isinstance(found.get("flops"), int):
        macs = found["flops"] // 2  # type: ignore[operator]  # FlopCounterMode: 2 per MAC of products only
    checks = [f"params {params:,} ({'=' if params == hand['params'] else '≠'} hand)" if isinstance(params, int) else "",
              f"MACs {macs:,} ({'=' if macs == hand['macs'] else '≠'} hand)" if isinstance(macs, int) else ""]
    if "uncounted" in found:
        checks.append(f"uncounted {found['uncounted'] or 'none'}")
    if tool == "costlens":
        checks.append(f"FLOPs {found['flops']:,}")
    return f"  {tool:18s} {found['seconds']:6.2f} s  {found['extra_mb']:7.1f} MB  " + "  ".join(c for c in checks if c)


def _median(tool: str, runs: list[dict[str, object]]) -> dict[str, object]:
    """The first run's findings with the median time and added memory of all runs (a tool's counts do
    not change from run to run; one that failed once is reported as failing)."""
    failed = [r for r in runs if "error" in r]
    found = dict(failed[0] if failed else runs[0])
    for key in ("seconds", "extra_mb"):
        if all(key in r for r in runs):
            found[key] = statistics.median(float(r[key]) for r in runs)  # type: ignore[arg-type]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=2048)
    parser.add_argument("--models", default="7b,70b", help=f"a comma list of {', '.join(MODELS)}")
    parser.add_argument("--mask", action="store_true", help="feed an all-ones attention mask too")
    parser.add_argument("--runs", type=int, default=3, help="fresh processes per tool, interleaved; medians shown")
    parser.add_argument("--json", type=Path, help="write every figure here")
    options = parser.parse_args()
    tools = [t for t in TOOLS if t != "calflops" or _has_calflops()]
    if "calflops" not in tools:
        print("calflops: not in this interpreter (bash bench/calflops-env.sh, then run with bench/.venv-calflops/bin/python)")
    figures: dict[str, object] = {}
    for name in options.models.split(","):
        shape, hand = MODELS[name], expected(MODELS[name], options.tokens)
        print(f"{name}: {asdict(shape)}, {options.tokens} tokens{', all-ones mask' if options.mask else ''}; "
              f"by hand params {hand['params']:,}, MACs {hand['macs']:,}")
        print(f"  {'tool':18s} {'time':>8s}  {'memory':>10s}  (time beyond imports, peak memory added: "
              f"medians of {options.runs} fresh processes)")
        rounds = [{tool: run(tool, shape, options.tokens, options.mask) for tool in tools} for _ in range(options.runs)]
        rows = {tool: _median(tool, [r[tool] for r in rounds]) for tool in tools}
        for tool, found in rows.items():
            print(_line(tool, found, hand))
        baseline = rows["flopcounter-meta"]
        if "error" not in rows["costlens"] and "error" not in baseline:
            print(f"  costlens / FlopCounterMode on meta: {rows['costlens']['seconds'] / baseline['seconds']:.2f} in time")
        figures[name] = {"shape": asdict(shape), "tokens": options.tokens, "mask": options.mask, "hand": hand, "tools": rows}
    if options.json:
        options.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
