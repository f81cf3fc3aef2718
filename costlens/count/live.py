"""The peak memory of one forward pass: the most bytes of tensors alive at one moment.

Sums over ops (``activation_bytes``) say how much was written, not how much was held:
a ResNet writes every block's output once, but only a few are alive at a time. This
tracker sees every op's outputs and follows their storages: a new storage is
added to the live bytes when an op returns it, and taken off when torch frees it (a
weak reference's callback). Views and in-place ops return storages already counted,
so they add nothing. The trace's inputs are alive from the start; the model's parameters
and buffers are known from the start too and add nothing (they are counted once, as
``weight_bytes``), so a view of a weight (linear's ``t(weight)``) is not memory again.

The counting mode of ``costlens/count/tracer.py`` hands it every op's outputs: the
tensors the model gets.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Iterable
from typing import Any

import torch

# Norms also return the statistics they saved for backward, whose size differs between
# kernels (meta keeps them in eval mode, cpu does not); they die at once, but the peak
# must not depend on the device, so only the normalized output counts.
STATISTICS_OUTPUTS = frozenset({
    "native_batch_norm", "_native_batch_norm_legit", "_native_batch_norm_legit_no_training",
    "cudnn_batch_norm", "native_layer_norm", "native_group_norm", "_batch_norm_with_update",
})


class LiveBytes:
    """Counts the bytes of the storages alive during a forward and remembers the most."""

    def __init__(self, inputs: Iterable[torch.Tensor] = (), state: Iterable[torch.Tensor] = ()) -> None:
        self.live = 0
        self.peak = 0
        self._refs: dict[int, tuple[weakref.ref, int]] = {}  # by storage id: a weak reference, and the bytes counted
        # parameters and buffers are counted once, as weight_bytes: a view of one (linear's
        # transposed weight) or an in-place update (num_batches_tracked += 1) adds nothing here.
        # They live through the whole forward: held here, by id, with no weak reference to watch.
        self._state = {id(storage): storage for storage in (tensor.untyped_storage() for tensor in state)}
        for tensor in inputs:
            self._hold(tensor)

    def _hold(self, tensor: torch.Tensor) -> None:
        storage = tensor.untyped_storage()
        key = id(storage)
        if key in self._refs or key in self._state:
            return  # a view or an in-place result, or a weight: its storage is counted already
        # the bytes the tensor spans, not the storage's: some meta kernels allocate more than
        # they return (a padded transposed convolution), which the cpu kernels do not
        self._hold_storage(storage, min(storage.nbytes(), _extent(tensor)))

    def _hold_storage(self, storage: torch.UntypedStorage, size: int) -> None:
        key = id(storage)
        self.live += size
        if self.live > self.peak:
            self.peak = self.live
        self._refs[key] = weakref.ref(storage, functools.partial(self._release, key, size)), size

    def _release(self, key: int, size: int, _gone: object) -> None:
        self.live -= size
        self._refs.pop(key, None)

    def hold(self, out: Any, primary_only: bool = False) -> None:
        """Count the storages of an op's outputs ``out`` as alive (only the first with ``primary_only``)."""
        if isinstance(out, torch.Tensor):
            self._hold(out)
        elif isinstance(out, (tuple, list)):
            for item in out[:1] if primary_only else out:
                if isinstance(item, torch.Tensor):
                    self._hold(item)


def _extent(tensor: torch.Tensor) -> int:
    """Bytes from the storage's start to the tensor's last element."""
    if tensor.storage_offset() == 0 and tensor.is_contiguous():
        return tensor.nbytes  # the usual fresh output, without the sum below
    if tensor.numel() == 0:
        return 0
    last = tensor.storage_offset() + sum((size - 1) * stride for size, stride in zip(tensor.shape, tensor.stride()))
    return int((last + 1) * tensor.element_size())
