"""Registration: the sub-pixel translation of a shifted image is found, and the closed-form step equals numpy's."""

from __future__ import annotations

import numpy as np
from hypothesis import example, given, settings, strategies as st

from dedup_engine.proof import prepare
from dedup_engine.registration import (Prepared, Warp, _newton_step, _offset_free_msd, _transform_size, register,
                                       residual, unmoved_residual)
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


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), template_height=st.integers(1, 62), template_width=st.integers(1, 62),
       radius=st.integers(0, 4), crop_y=st.integers(0, 4), crop_x=st.integers(0, 4))
@example(seed=0, template_height=1, template_width=1, radius=4, crop_y=4, crop_x=0)  # the smallest template
@example(seed=0, template_height=1, template_width=2, radius=1, crop_y=1, crop_x=3)  # float32 error 2e-4 of 11.8
def test_the_correlation_from_cached_transforms_equals_a_direct_sum(seed: int, template_height: int,
                                                                    template_width: int, radius: int, crop_y: int,
                                                                    crop_x: int) -> None:
    """Every placement's offset-free mean squared difference, window variance and template variance, as the
    transforms give them, equal a direct sum in float64 over each window, to float32's precision (any size: the
    padding to 2^i 3^j never wraps), whichever image is transformed first and however often its transform is reused. The sizes are drawn so
    that the template keeps at least one pixel, as ``_offset_free_msd`` requires (``register`` asks for 8x8 before
    calling it): the moving image is the template plus ``radius`` a side, the target the moving image plus a crop."""
    rng = np.random.default_rng(seed)
    moving_height, moving_width = template_height + 2 * radius, template_width + 2 * radius
    height, width = moving_height + crop_y, moving_width + crop_x
    target = Prepared(rng.uniform(0, 255, (height, width)).astype(np.float32), 2, (2 * height, 2 * width), 50.0)
    moving_pixels = rng.uniform(0, 255, (moving_height, moving_width)).astype(np.float32)
    moving = Prepared(moving_pixels, 2, (2 * moving_pixels.shape[0], 2 * moving_pixels.shape[1]), 50.0)
    a, b = target.smooth().astype(np.float64), moving.smooth().astype(np.float64)
    template = b[radius : b.shape[0] - radius, radius : b.shape[1] - radius]
    th, tw = template.shape
    spread = float(a.var() + template.var())
    for _ in range(2):  # the second time from the transforms held by both images
        msd, window_var, template_var = _offset_free_msd(target, moving, radius)
        assert msd.shape == (height - th + 1, width - tw + 1)
        for oy in range(msd.shape[0]):
            for ox in range(msd.shape[1]):
                window = a[oy : oy + th, ox : ox + tw]
                difference = template - window
                expected = float((difference ** 2).mean() - difference.mean() ** 2)
                # float32 transforms of the images less their means: the cross term to float32's precision, which
                # scales with the images' own variances (random frames: about 2e-4 grey levels squared against a
                # proof threshold of 0.56); a planted mistake in the cross term is off by whole grey levels squared
                assert abs(msd[oy, ox] - expected) <= 1e-5 * (1.0 + spread)
                assert abs(window_var[oy, ox] - window.var()) <= 1e-6 * max(1.0, float((window ** 2).mean()))
        assert abs(template_var - template.var()) <= 1e-6 * max(1.0, float((template ** 2).mean()))


def test_the_transform_size_is_the_smallest_product_of_twos_and_threes_at_least_the_length() -> None:
    smooth = sorted(2**i * 3**j for i in range(12) for j in range(8))
    for length in range(1, 1500):
        assert _transform_size(length) == next(value for value in smooth if value >= length), length


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), height=st.integers(4, 130), width=st.integers(4, 130),
       ty=st.floats(-4.5, 4.5), tx=st.floats(-4.5, 4.5), whole_row=st.booleans(), edges=st.booleans())
@example(seed=0, height=4, width=4, ty=0.0, tx=1.0, whole_row=False, edges=True)  # whole pixels: sliced, no edges
def test_the_separable_bicubic_resampling_is_warp_affines(seed: int, height: int, width: int, ty: float, tx: float,
                                                          whole_row: bool, edges: bool) -> None:
    """resample's two 1-D passes give cv2.warpAffine's INTER_CUBIC translation with replicated edges, up to
    float32 rounding: inside the valid rectangle, and over the whole frame where the kernel reaches past its edges."""
    import cv2

    from dedup_engine.registration import Warp, resample, valid_rect

    rng = np.random.default_rng(seed)
    image = cv2.GaussianBlur((rng.random((height, width)) * 255).astype(np.float32), (0, 0), rng.uniform(0.5, 3))
    warp = Warp(float(round(ty)) if whole_row else ty, tx)
    # a whole-pixel translation is sliced, within the valid rectangle only (where residual() always calls it);
    # a fractional one may reach past the frame, whose edges are then replicated as warpAffine replicates them
    edges = edges and not warp.integral
    rect = ((0, height), (0, width)) if edges else valid_rect(warp, image.shape, image.shape)
    if rect is None:
        return
    (y0, y1), (x0, x1) = rect
    matrix = np.float32([[1, 0, x0 + warp.tx], [0, 1, y0 + warp.ty]])
    expected = cv2.warpAffine(image, matrix, (x1 - x0, y1 - y0), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_REPLICATE)
    found = resample(image, warp, rect)
    assert found.shape == expected.shape
    assert float(np.abs(found - expected).max()) <= 2e-3, (warp, rect)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), dy=st.floats(-3, 3), dx=st.floats(-3, 3), gain=st.floats(0.85, 1.15),
       offset=st.floats(-8, 8), noise=st.floats(0, 4))
def test_the_unmoved_residual_from_low_passed_images_is_the_residual_at_no_translation(
        seed: int, dy: float, dx: float, gain: float, offset: float, noise: float) -> None:
    """The low-pass is linear and keeps a constant: the residual at no translation taken from both images'
    low-passed versions is the one of their low-passed difference, moved, brightened and noisy copies alike."""
    rng = np.random.default_rng(seed)
    frame = draw_frame(rng, (248, 248), 2)
    copy = np.clip(shift(frame, dy, dx).astype(np.float64) * gain + offset + rng.normal(0, noise, frame.shape), 0, 255)
    kept, moved = prepare(frame).prepared(), prepare(copy.astype(np.uint8)).prepared()
    expected = residual(kept.pixels, moved.pixels, Warp(0.0, 0.0))
    assert abs(unmoved_residual(kept, moved) - expected) <= 1e-4 * max(1.0, expected)
