"""SSIM between two encoded images, with scikit-image (Wang et al. 2004: Gaussian window, sigma 1.5)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from skimage.metrics import structural_similarity

_MIN_SIDE = 7  # the Gaussian window needs at least 7x7 pixels


def pixels(data: bytes | Image.Image) -> np.ndarray:
    image = data if isinstance(data, Image.Image) else Image.open(io.BytesIO(data))
    return np.asarray(image.convert("RGB"))


def ssim(a: bytes | Image.Image, b: bytes | Image.Image) -> float | None:
    """Mean SSIM over the R, G and B channels; None when sizes differ or the image is too small."""
    left, right = pixels(a), pixels(b)
    if left.shape != right.shape or min(left.shape[:2]) < _MIN_SIDE:
        return None
    return float(
        structural_similarity(
            left,
            right,
            channel_axis=2,
            data_range=255,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
        )
    )
