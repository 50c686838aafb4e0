"""Data parallel training under ``torchrun``.

Call :func:`init_distributed` first; :func:`meshcnn.train.fit` then wraps the model in
``DistributedDataParallel`` (:func:`data_parallel`; the layers' constant buffers are left
out of its broadcasts, :func:`ignore_constant_buffers`), shards the data with a
``DistributedSampler`` and lets only rank 0 evaluate and write files. Outside
``torchrun`` every helper here is a no-op for one process.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Dataset, DistributedSampler

__all__ = ["init_distributed", "constant_buffer_names", "ignore_constant_buffers", "wrap_data_parallel"]


def init_distributed(device: str | torch.device = "cpu") -> tuple[int, int]:
    """Join the process group that ``torchrun`` describes in the environment.

    Uses the ``gloo`` backend for CPU training and ``nccl`` for CUDA, and pins each
    CUDA process to ``cuda:LOCAL_RANK``. Outside ``torchrun`` (``WORLD_SIZE`` unset
    or 1) it does nothing.

    End the run with ``torch.distributed.destroy_process_group()``. With ``gloo``, once a
    ``DistributedDataParallel`` wrapper has existed, torch keeps the group's threads alive past
    that call, and interpreter teardown can then abort the process ("terminate called without
    an active exception", pytorch/pytorch#190489) after all work is done and written.

    Parameters
    ----------
    device : str or torch.device
        The training device; its type chooses the backend.

    Returns
    -------
    tuple of int
        ``(rank, world_size)``; ``(0, 1)`` when not distributed.
    """
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return 0, 1
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    cuda = torch.device(device).type == "cuda"
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if cuda else "gloo")
    return dist.get_rank(), dist.get_world_size()


def rank_and_world_size() -> tuple[int, int]:
    """``(rank, world_size)`` of the initialised process group, ``(0, 1)`` without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def resolve_device(device: str | torch.device) -> torch.device:
    """``device`` as a ``torch.device``; a bare ``"cuda"`` under ``torchrun`` is this process's GPU."""
    device = torch.device(device)
    if device.type == "cuda" and device.index is None and rank_and_world_size()[1] > 1:
        device = torch.device("cuda", torch.cuda.current_device())
    return device


def constant_buffer_names(model: nn.Module) -> list[str]:
    """Fully qualified names of the layers' own constant buffers in ``model``.

    Those are the buffers that meshcnn's layers register as constants of the mesh
    (:meth:`meshcnn.nn.ConstantBuffers.register_constant`: the sparse
    operators and their block indices, pooling rings, area weights, sign flips). They
    are rebuilt identically on every rank, so distributed training need not broadcast
    them (their size is in ``experiments/benchmark/RESULTS.md``, "Moved from docstrings:
    training and prediction"). Any other buffer, persistent or not (BatchNorm
    statistics, another library's non-persistent buffers), is not one of them.

    Parameters
    ----------
    model : nn.Module

    Returns
    -------
    list of str
        Names as in ``model.named_buffers(remove_duplicate=False)``.
    """
    from ..nn import ConstantBuffers

    names = []
    for prefix, module in model.named_modules(remove_duplicate=False):
        if isinstance(module, ConstantBuffers):
            own = dict(module.named_buffers(recurse=False))
            names += [
                f"{prefix}.{name}" if prefix else name
                for name in module.__dict__.get("_constant_masters", {})
                if own.get(name) is not None
            ]
    return names


def ignore_constant_buffers(model: nn.Module) -> list[str]:
    """Tell ``DistributedDataParallel`` (before wrapping ``model``) not to broadcast its constant buffers.

    torch (up to 2.13 at least) has no public way to leave some buffers out of DDP's
    broadcasts: ``broadcast_buffers``/``forward_sync_buffers`` is all or nothing, and
    would leave BatchNorm statistics unsynchronised (pytorch/pytorch#43690, open). This
    function is the one place that uses the private
    ``DistributedDataParallel._set_params_and_buffers_to_ignore_for_model``, and only
    for :func:`constant_buffer_names` (added to any names already set on ``model``);
    every other buffer is broadcast as usual. Without that method (a later torch)
    nothing is left out: correct, only more communication.

    Parameters
    ----------
    model : nn.Module
        The model about to be wrapped.

    Returns
    -------
    list of str
        The names DDP leaves out (empty when the private method is missing).
    """
    ignore = getattr(nn.parallel.DistributedDataParallel, "_set_params_and_buffers_to_ignore_for_model", None)
    if ignore is None:
        return []
    names = list(getattr(model, "_ddp_params_and_buffers_to_ignore", []))
    names += [name for name in constant_buffer_names(model) if name not in names]
    ignore(model, names)
    return names


def wrap_data_parallel(model: nn.Module, device: torch.device) -> nn.parallel.DistributedDataParallel:
    """``DistributedDataParallel(model)`` with the constant buffers left out of its broadcasts.

    Parameters
    ----------
    model : nn.Module
        Already on ``device``, in an initialised process group.
    device : torch.device

    Returns
    -------
    DistributedDataParallel
    """
    ignore_constant_buffers(model)  # built identically on every rank: not broadcast at every step
    return nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def data_parallel(
    model: nn.Module, train_set: Dataset, device: torch.device, seed: int
) -> tuple[nn.Module, DistributedSampler | None]:
    """The module to train and the sampler that shards ``train_set`` across the processes.

    Parameters
    ----------
    model : nn.Module
        Already on ``device``.
    train_set : Dataset
    device : torch.device
    seed : int
        Seeds the sampler's shuffling (with the epoch, see ``DistributedSampler.set_epoch``).

    Returns
    -------
    tuple
        ``(model, None)`` in one process; else (:func:`wrap_data_parallel` of ``model``,
        ``DistributedSampler``).
    """
    rank, world_size = rank_and_world_size()
    if world_size <= 1:
        return model, None
    return wrap_data_parallel(model, device), DistributedSampler(
        train_set, num_replicas=world_size, rank=rank, shuffle=True, seed=seed
    )


def all_reduce_sum(*values: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Sum scalar tensors over the processes (returned unchanged in one process)."""
    if rank_and_world_size()[1] <= 1:
        return values
    totals = torch.stack(values)
    dist.all_reduce(totals)
    return tuple(totals.unbind())


def any_process(flag: bool, device: torch.device) -> bool:
    """Whether ``flag`` is true in any process (``flag`` itself in one process)."""
    if rank_and_world_size()[1] <= 1:
        return flag
    value = torch.tensor(float(flag), device=device)
    dist.all_reduce(value)
    return bool(value.item() > 0)


def barrier() -> None:
    """Wait for every process (nothing in one process)."""
    if rank_and_world_size()[1] > 1:
        dist.barrier()
