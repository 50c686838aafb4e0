"""The one cache helper: its keying rule and copy-on-return."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from meshcnn._cache import cache_key, memoize


def test_arrays_key_by_content_and_results_are_copies():
    calls = []

    @memoize(maxsize=2)
    def f(a, scale=1.0):
        calls.append(1)
        return {"x": a * scale, "m": sp.eye(3, format="csr"), "t": torch.ones(2)}

    a = np.arange(4.0)
    first = f(a)
    first["x"][:] = -1  # the caller writes into its result
    first["m"].data[:] = 7
    first["t"][:] = 5
    again = f(a.copy())  # equal content: a hit
    assert len(calls) == 1
    np.testing.assert_array_equal(again["x"], np.arange(4.0))
    assert again["m"].toarray()[0, 0] == 1 and again["t"].tolist() == [1.0, 1.0]
    a[0] = 10  # changed in place: a new key
    f(a)
    assert len(calls) == 2
    f(np.arange(4.0), scale=2.0)  # keywords are part of the key; maxsize 2 evicts the oldest
    assert len(calls) == 3 and f.cache_len() == 2
    f(np.arange(4.0))
    assert len(calls) == 4


def test_keys_distinguish_dtype_shape_device_and_refuse_unhashable():
    assert cache_key(np.zeros(4)) != cache_key(np.zeros(4, np.float32))
    assert cache_key(np.zeros(4)) != cache_key(np.zeros((2, 2)))
    assert cache_key(torch.zeros(3)) == cache_key(torch.zeros(3))
    assert cache_key(torch.zeros(3)) != cache_key(torch.zeros(3, dtype=torch.bfloat16))
    assert cache_key([1, (2, 3)]) != cache_key((1, (2, 3)))
    with pytest.raises(TypeError):
        cache_key({"a": 1})


def test_copy_false_returns_the_same_object():
    @memoize(maxsize=None, copy=False)
    def g(n):
        return np.zeros(n)

    assert g(3) is g(3)
    g.cache_clear()
    assert g.cache_len() == 0
