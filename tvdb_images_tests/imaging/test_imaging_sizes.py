"""fit_inside and the size table: the geometry every rendition is built on."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from tvdb_images.imaging import SIZE_BOXES, fit_inside


def test_size_boxes_are_ordered_largest_first() -> None:
    assert list(SIZE_BOXES) == ["original", "large", "medium", "small", "thumbnail"]
    boxes = [box for box in SIZE_BOXES.values() if box is not None]
    assert boxes == sorted(boxes, reverse=True)
    assert SIZE_BOXES["original"] is None


@pytest.mark.parametrize(
    ("source", "box", "expected"),
    [
        ((1920, 1080), (1920, 1080), (1920, 1080)),
        ((3840, 2160), (1920, 1080), (1920, 1080)),
        ((3840, 2160), (300, 169), (300, 169)),
        ((680, 1000), (1920, 1080), (680, 1000)),
        ((680, 1000), (1280, 720), (490, 720)),
        ((758, 140), (640, 360), (640, 118)),
        ((640, 360), (300, 169), (300, 169)),
        ((300, 450), (300, 169), (113, 169)),
        ((10_000, 1), (300, 169), (300, 1)),
        ((1, 10_000), (300, 169), (1, 169)),
        ((2, 2), (300, 169), (2, 2)),
        ((4096, 800), None, (4096, 800)),
    ],
)
def test_fit_inside_examples(
    source: tuple[int, int], box: tuple[int, int] | None, expected: tuple[int, int]
) -> None:
    assert fit_inside(*source, box) == expected


@pytest.mark.parametrize("bad", [(0, 10), (10, 0), (-1, 5)])
def test_fit_inside_refuses_empty_sources(bad: tuple[int, int]) -> None:
    with pytest.raises(ValueError):
        fit_inside(*bad, (300, 169))


dimension = st.integers(min_value=1, max_value=40_000)
box_side = st.integers(min_value=1, max_value=4_000)


@given(width=dimension, height=dimension, box=st.tuples(box_side, box_side))
def test_fit_inside_properties(width: int, height: int, box: tuple[int, int]) -> None:
    out_w, out_h = fit_inside(width, height, box)
    assert 1 <= out_w <= min(width, box[0])
    assert 1 <= out_h <= min(height, box[1])
    # Aspect ratio kept within one pixel of rounding on the side that was computed.
    assert abs(out_w * height - out_h * width) <= max(width, height)
    if width <= box[0] and height <= box[1]:
        assert (out_w, out_h) == (width, height)
    else:
        # It fills the box on at least one side (the binding one).
        assert out_w == box[0] or out_h == box[1]


@settings(max_examples=60, deadline=None)
@given(
    width=st.integers(min_value=1, max_value=2_500),
    height=st.integers(min_value=1, max_value=2_500),
    name=st.sampled_from([name for name, box in SIZE_BOXES.items() if box is not None]),
)
def test_fit_inside_matches_pillow_thumbnail(width: int, height: int, name: str) -> None:
    box = SIZE_BOXES[name]
    assert box is not None
    image = Image.new("1", (width, height))
    image.thumbnail(box)
    assert fit_inside(width, height, box) == image.size
