"""Registration: the sub-pixel translation of a shifted image is found, and the closed-form step equals numpy's."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings, strategies as st

from dedup_engine.proof import prepare
from dedup_engine.registration import _newton_step, register
from local_runner.generator import draw_frame, shift


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), flat=st.booleans())
def test_the_closed_form_step_equals_the_eigen_decomposition(seed: int, flat: bool) -> None:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(2, 2))
    hessian = a @ a.T * rng.uniform(0.1, 5)
    if flat:  # a valley with (almost) no floor: the step must go to the floor, not along it
        values, vectors = np.linalg.eigh(hessian)
        values[0] = values[1] * rng.uniform(0, 0.01)
        hessian = vectors @ np.diag(values) @ vectors.T
    gradient = rng.normal(size=2)
    values, vectors = np.linalg.eigh(hessian)
    kept = values > 0.02 * values[-1]
    expected = -(vectors[:, kept] / values[kept]) @ (vectors[:, kept].T @ gradient)
    found = _newton_step(hessian[0, 0], hessian[0, 1], hessian[1, 1], gradient[0], gradient[1])
    assert found is not None and np.allclose(found, expected, atol=1e-8)


def test_a_flat_surface_gives_no_step() -> None:
    assert _newton_step(0.0, 0.0, 0.0, 1.0, 1.0) is None


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), dy=st.floats(-4, 4), dx=st.floats(-4, 4))
def test_a_fractional_shift_is_found_to_a_tenth_of_a_frame_pixel(seed: int, dy: float, dx: float) -> None:
    frame = draw_frame(np.random.default_rng(seed), (248, 248), 2)
    kept, moved = prepare(frame).prepared(), prepare(shift(frame, dy, dx)).prepared()
    found = register(kept, moved, 3, subpixel=True)
    assert found and found[0][0] < 0.75
    warp = found[0][1]  # kept proof pixel (y, x) lies on the copy's (y + ty, x + tx): the copy moved by t proof
    assert abs(warp.ty * 2 - dy) < 0.25 and abs(warp.tx * 2 - dx) < 0.25, (warp, dy, dx)  # pixels, 2 frame px each
