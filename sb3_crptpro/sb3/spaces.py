"""One check for every public entry that takes pixels: extractor, reward wrapper, encoding wrapper, buffers.

Issue 14: ``PrototypeIntrinsicReward(VecNormalize(venv), artifact)`` accepted float observations around 0.01 and
embedded them as if they were 0-255 pixels. Every entry now calls :func:`check_pixel_space`, so the error for the
same mistake reads the same everywhere and names the wrapper to add or remove.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

__all__ = ["PixelSpaceError", "check_pixel_batch", "check_pixel_space"]


class PixelSpaceError(ValueError):
    """The observation space is not the channel-first ``uint8`` pixel stack an encoder expects."""


def _describe(space: gym.Space) -> str:
    if isinstance(space, gym.spaces.Box):
        low, high = np.min(space.low), np.max(space.high)
        return f"Box({low:g}, {high:g}, {tuple(space.shape)}, {space.dtype})"
    return repr(space)


def check_pixel_space(
    space: gym.Space,
    who: str,
    expected_shape: tuple[int, ...] | None = None,
    frame_stack: int | None = None,
) -> None:
    """Raise :class:`PixelSpaceError` unless ``space`` is ``Box(0, 255, (C, H, W), uint8)`` (of ``expected_shape``).

    :param space: the observation space to check
    :param who: the class or function that needs pixels (starts the message)
    :param expected_shape: the pretrained encoder's ``obs_shape`` ``(3 * frame_stack, H, W)``; ``None`` checks only
        dtype, bounds and rank (buffers, which work for any frame size)
    :param frame_stack: frames in ``expected_shape`` (only used to explain a shape mismatch)
    :raises PixelSpaceError: with what was found and the wrapper to add or remove
    """
    wanted = f"Box(0, 255, {tuple(expected_shape) if expected_shape else '(C, H, W)'}, uint8)"
    found = _describe(space)
    prefix = f"{who} needs raw channel-first pixels {wanted}, got {found}"
    if isinstance(space, gym.spaces.Dict):
        raise PixelSpaceError(f"{prefix}. Dict observations are not supported: pass the image key alone.")
    if not isinstance(space, gym.spaces.Box) or len(space.shape) != 3:
        raise PixelSpaceError(f"{prefix}. Build the env with make_dmc_env (or render frames with Gymnasium's "
                              "AddRenderObservation) before this step.")  # fmt: skip
    if space.dtype != np.uint8 or np.any(space.low != 0) or np.any(space.high != 255):
        raise PixelSpaceError(
            f"{prefix}. Observations were rescaled or normalised on the way (VecNormalize with norm_obs=True, a "
            "float-casting or normalising wrapper): remove that wrapper, or use VecNormalize(norm_obs=False); the "
            "encoder divides by 255 itself."
        )
    shape = tuple(space.shape)
    if expected_shape is None or shape == tuple(expected_shape):
        if expected_shape is None and shape[0] == shape[1] and shape[2] <= 12 < shape[0]:  # (H, H, C): channel-last
            raise PixelSpaceError(
                f"{prefix}. It looks channel-last: wrap the VecEnv with stable_baselines3's VecTransposeImage."
            )
        return
    c, h, w = expected_shape
    if shape == (h, w, c):
        raise PixelSpaceError(f"{prefix}. It is channel-last: wrap the VecEnv with stable_baselines3's "
                              "VecTransposeImage (make_dmc_env is channel-first already).")  # fmt: skip
    stack = f"{frame_stack} stacked RGB frames of " if frame_stack else ""
    raise PixelSpaceError(
        f"{prefix}. The pretrained encoder expects {stack}{h}x{w} pixels: build the env with the artifact's "
        "image_size and frame_stack (sb3_crptpro.env_settings(artifact.metadata, action_repeat))."
    )


def check_pixel_batch(pixels: np.ndarray, who: str, expected_shape: tuple[int, int, int]) -> bool:
    """Check an array of pixels handed to an encoder directly (not through an env), as :func:`check_pixel_space`
    checks a space; return whether it is one observation without a batch axis.

    Measured before this check (``FrozenEncoding`` of the shipped ``dmc-64px``): one ``(9, 64, 64)`` stack failed
    with torch's "required rank 4 tensor", a channel-last batch with a conv error, and float frames in [0, 1] gave
    other vectors than their uint8 pixels without an error (max difference 3.2).

    :param pixels: ``uint8`` ``[B, C, H, W]`` or one ``[C, H, W]`` observation
    :param who: the class that needs pixels (starts the message)
    :param expected_shape: the encoder's ``(C, H, W)``
    :return: ``True`` for one ``[C, H, W]`` observation, ``False`` for a batch
    :raises PixelSpaceError: another dtype (float frames: the encoder divides by 255 itself), channel-last frames or
        another frame shape; one line with what to pass instead
    """
    shape, (c, h, w) = tuple(pixels.shape), expected_shape
    prefix = f"{who} takes uint8 pixels [B, {c}, {h}, {w}] (or one [{c}, {h}, {w}] observation), got {pixels.dtype} "
    prefix += f"{list(shape)}"
    if shape[-3:] == (h, w, c):
        axes = "(0, 3, 1, 2)" if len(shape) == 4 else "(2, 0, 1)"
        raise PixelSpaceError(f"{prefix}: it is channel-last; pass np.transpose(pixels, {axes})")
    if len(shape) not in (3, 4) or shape[-3:] != (c, h, w):
        raise PixelSpaceError(f"{prefix}: build the frames with the artifact's image_size and frame_stack "
                              "(sb3_crptpro.env_settings(artifact.metadata, action_repeat))")  # fmt: skip
    if pixels.dtype != np.uint8:
        scaled = pixels.dtype.kind == "f" and pixels.size > 0 and float(np.max(pixels)) <= 1.0
        how = "(frames * 255).round().astype(np.uint8): these look scaled to [0, 1]" if scaled else (
            "frames.astype(np.uint8), if they hold whole values 0-255")  # fmt: skip
        raise PixelSpaceError(f"{prefix}: pass the raw 0-255 pixels as uint8 ({how}); the encoder divides by 255 "
                              "itself")  # fmt: skip
    return len(shape) == 3
