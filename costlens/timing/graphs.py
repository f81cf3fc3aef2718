"""A forward captured once as a CUDA graph, timed by its replays.

At batch 1 a GPU forward is often launch-bound: Python and the launch of each kernel take
longer than the kernels. A CUDA graph records the kernels of one forward and replays them
with one launch, so its time is the kernels' (and the gaps the GPU itself leaves), the
figure a deployment that uses graphs sees. The eager figure stays beside it.

Capture follows torch's rules (torch.cuda.graphs): warm up on a side stream first (cuDNN
autotuning and the allocator's first allocations are not capturable), then record under
``torch.cuda.graph``. A forward that synchronizes (``.item()``, printing a tensor), runs
CPU ops on CUDA tensors' values, or changes shapes between calls cannot be captured; the
reason is kept and the eager figure is what there is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

WARMUP_RUNS = 3


@dataclass
class Captured:
    """A captured forward: ``replay`` runs it; the graph and its output are kept alive with it."""

    graph: Any
    output: Any

    def replay(self) -> None:
        self.graph.replay()

    def release(self) -> None:
        """Let the graph's memory pool go."""
        self.graph, self.output = None, None
        torch.cuda.empty_cache()


def capture(forward: Callable[[], Any]) -> Captured:
    """``forward`` captured as a CUDA graph (RuntimeError with torch's reason when it cannot be)."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.no_grad(), torch.cuda.stream(side):
        for _ in range(WARMUP_RUNS):
            forward()
    torch.cuda.current_stream().wait_stream(side)
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.no_grad(), torch.cuda.graph(graph):
        output = forward()
    torch.cuda.synchronize()
    return Captured(graph, output)


def why_not(error: BaseException) -> str:
    """The one line a report shows for a forward that could not be captured."""
    text = str(error).strip()
    first = text.splitlines()[0] if text else type(error).__name__
    return f"not captured as a CUDA graph ({first[:200]}): the eager figure stands alone"
