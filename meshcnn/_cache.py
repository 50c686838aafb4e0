"""One in-memory cache for the library's pure functions.

Every cache in meshcnn goes through :func:`memoize`, so there is one keying rule and
one rule for what a caller may do with the result:

* **Key.** Each argument, positional or keyword, becomes part of the key by
  :func:`cache_key`: a numpy array or a torch tensor by its dtype, shape and the
  SHA-1 of its bytes (two equal arrays share an entry; an array changed in place
  after the call does not hit the old entry); a list or tuple element by element;
  anything else by value (it must be hashable).
* **Copy on return.** With ``copy=True`` (the default) numpy arrays, torch
  tensors and scipy sparse matrices in the result (also inside tuples, lists and
  dicts) are copied, so a caller that writes into its result cannot corrupt the
  cache. ``copy=False`` is for results that are immutable by contract (a
  :class:`~meshcnn.geometry.Mesh`, a compiled kernel).
"""

from __future__ import annotations

import functools
import hashlib
import sys
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

import numpy as np

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["memoize", "cache_key", "copy_result"]


def _array_key(kind: str, dtype: str, shape: tuple[int, ...], data: bytes) -> tuple:
    return (kind, dtype, shape, hashlib.sha1(data).hexdigest())


def _is_tensor(value: Any) -> bool:
    """Whether ``value`` is a torch tensor, without importing torch: if nothing has imported
    it, nothing can hold a tensor (so the geometry layer stays free of torch)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def cache_key(value: Any) -> Hashable:
    """The hashable key of one argument (see the module docstring for the rule)."""
    if isinstance(value, np.ndarray):
        return _array_key("ndarray", value.dtype.str, value.shape, np.ascontiguousarray(value).tobytes())
    if _is_tensor(value):
        import torch

        host = value.detach().to("cpu").contiguous().reshape(-1)
        return _array_key("tensor", str(value.dtype), tuple(value.shape), host.view(torch.uint8).numpy().tobytes()) + (
            str(value.device),
        )
    if isinstance(value, (list, tuple)):
        return (type(value).__name__,) + tuple(cache_key(v) for v in value)
    hash(value)  # a clear TypeError for an unhashable argument
    return value


def copy_result(value: Any) -> Any:
    """``value`` with every array, tensor and sparse matrix in it copied (containers rebuilt)."""
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, tuple):
        return type(value)(*map(copy_result, value)) if hasattr(value, "_fields") else tuple(map(copy_result, value))
    if isinstance(value, list):
        return [copy_result(v) for v in value]
    if isinstance(value, dict):
        return {k: copy_result(v) for k, v in value.items()}
    if hasattr(value, "tocsr") and hasattr(value, "copy"):  # scipy.sparse
        return value.copy()
    if _is_tensor(value):
        return value.clone()
    return value


def memoize(maxsize: int | None = 32, *, copy: bool = True) -> Callable[[F], F]:
    """Decorator: cache a pure function's results, least recently used first out.

    Parameters
    ----------
    maxsize : int or None
        Entries kept; ``None`` keeps all.
    copy : bool
        Copy arrays, tensors and sparse matrices in the result on every return
        (see the module docstring).

    The wrapped function gets ``cache_clear()`` and ``cache_len()``.
    """

    def decorate(fn: F) -> F:
        entries: OrderedDict[Hashable, Any] = OrderedDict()

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            key = (tuple(cache_key(a) for a in args), tuple(sorted((k, cache_key(v)) for k, v in kwargs.items())))
            if key in entries:
                entries.move_to_end(key)
                result = entries[key]
            else:
                result = fn(*args, **kwargs)
                entries[key] = result
                if maxsize is not None and len(entries) > maxsize:
                    entries.popitem(last=False)
            return copy_result(result) if copy else result

        wrapper.cache_clear = entries.clear  # type: ignore[attr-defined]
        wrapper.cache_len = entries.__len__  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate
