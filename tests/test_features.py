"""Feature maps: unit norm, agreement with the angle encoding, range rules, JAX tracing."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from qtn.features import (
    angle_encoding,
    get_feature_map,
    list_feature_maps,
    ry_matrix,
    spin_coherent,
    trigonometric,
)

unit_floats = st.floats(0.0, 1.0, allow_nan=False, width=64)


def test_registry_lists_and_rejects():
    assert {"trigonometric", "spin_coherent", "one_hot"} <= set(list_feature_maps())
    with pytest.raises(ValueError, match="valid names: .*trigonometric"):
        get_feature_map("fourier-ish")
    fm = trigonometric()
    assert get_feature_map(fm) is fm


def test_trigonometric_values():
    fm = get_feature_map("trigonometric")
    out = fm(np.array([0.0, 0.5, 1.0]))
    s = math.sqrt(0.5)
    np.testing.assert_allclose(out, [[1, 0], [s, s], [0, 1]], atol=1e-15)


@settings(max_examples=50, deadline=None)
@given(arrays(np.float64, st.integers(1, 40), elements=unit_floats), st.integers(2, 6))
def test_unit_norm_property(x, d):
    for fm in (trigonometric(), spin_coherent(d)):
        v = fm(x)
        assert v.shape == (*x.shape, fm.dim)
        np.testing.assert_allclose((v**2).sum(-1), 1.0, atol=1e-12)
        assert np.all(v >= -1e-15)


@settings(max_examples=50, deadline=None)
@given(arrays(np.float64, st.integers(1, 20), elements=unit_floats))
def test_angle_encoding_matches_trigonometric_exactly(x):
    states = ry_matrix(angle_encoding(x)) @ np.array([1.0, 0.0])
    np.testing.assert_allclose(states, trigonometric()(x), atol=1e-15, rtol=0)


def test_spin_coherent_dim2_is_trig_and_is_a_tensor_power():
    x = np.linspace(0, 1, 11)
    np.testing.assert_allclose(spin_coherent(2)(x), trigonometric()(x), atol=1e-15)
    # phi_3 = symmetric part of phi_2 (x) phi_2, so <phi3(x), phi3(y)> = <phi2(x), phi2(y)>^2
    y = x[::-1]
    lhs = (spin_coherent(3)(x) * spin_coherent(3)(y)).sum(-1)
    rhs = (trigonometric()(x) * trigonometric()(y)).sum(-1) ** 2
    np.testing.assert_allclose(lhs, rhs, atol=1e-14)


def test_one_hot():
    fm = get_feature_map("one_hot", dim=3)
    np.testing.assert_array_equal(fm(np.array([[0, 2]])), [[[1, 0, 0], [0, 0, 1]]])
    with pytest.raises(ValueError, match="integers in \\[0, 2\\]"):
        fm(np.array([3]))
    with pytest.raises(ValueError, match="integers"):
        fm(np.array([0.5]))
    with pytest.raises(ValueError, match="dim must be an integer >= 2"):
        get_feature_map("one_hot", dim=1)


def test_range_errors_and_clipping():
    fm = trigonometric()
    with pytest.raises(ValueError, match=r"outside the range \[0.0, 1.0\].*clip=True"):
        fm(np.array([0.2, 1.3]))
    with pytest.raises(ValueError, match="NaN or inf"):
        fm(np.array([np.nan]))
    with pytest.raises(ValueError, match="numeric"):
        fm(np.array(["a"]))
    with pytest.warns(UserWarning, match="clipping"):
        out = trigonometric(clip=True)(np.array([-0.5, 1.5]))
    np.testing.assert_allclose(out, [[1, 0], [0, 1]], atol=1e-15)
    # rounding noise just outside the range is clipped silently
    np.testing.assert_allclose(fm(np.array([1.0 + 1e-9])), [[0, 1]], atol=1e-8)
    with pytest.raises(ValueError, match="outside"):
        angle_encoding(np.array([2.0]))
    with pytest.raises(ValueError, match="dim must be"):
        spin_coherent(1)


@pytest.mark.parametrize("name,kw", [("trigonometric", {}), ("spin_coherent", {"dim": 4})])
def test_jax_traceable_single_and_batch(name, kw):
    fm = get_feature_map(name, **kw)
    x = np.random.default_rng(0).random((5, 7)).astype(np.float32)
    ref = fm(x)
    jitted = jax.jit(fm)(jnp.asarray(x))
    vmapped = jax.vmap(fm)(jnp.asarray(x))
    single = fm(x[0])
    assert isinstance(jitted, jax.Array)
    np.testing.assert_allclose(jitted, ref, atol=1e-6)
    np.testing.assert_allclose(vmapped, ref, atol=1e-6)
    np.testing.assert_allclose(single, ref[0], atol=1e-7)
    # gradient flows through the map
    g = jax.grad(lambda t: fm(t).sum())(jnp.float32(0.3))
    assert np.isfinite(g)
