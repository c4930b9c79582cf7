"""IMAGE_FORMATS: how the list is read, what it makes the engine render from one decode, and which
formats a re-render renders, keeps and drops (fast: no services)."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import delete

from tvdb_images.catalog import queue, results
from tvdb_images.catalog.db import Catalog
from tvdb_images.catalog.importer import import_catalog_lines
from tvdb_images.catalog.models import Artwork, ArtworkRendition, ArtworkStatus
from tvdb_images.catalog.queue import RenderTask
from tvdb_images.catalog.references import processed_completeness
from tvdb_images.catalog.scope import Scope
from tvdb_images.catalog.signatures import split_signature
from tvdb_images.config import ConfigError, load_settings
from tvdb_images.imaging import render_renditions
from tvdb_images.imaging.render import RenderSettings
from tvdb_images.pipeline.render import formats_to_render
from tvdb_images.pipeline.settings import PipelineSettings
from tvdb_images.storage.layout import SIZES


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("IMAGE_FORMAT", "IMAGE_FORMATS", "IMAGE_QUALITY", "IMAGE_QUALITY_AVIF", "AVIF_SPEED"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_the_list_and_its_one_format_shorthand(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().output_formats == ("webp",)
    monkeypatch.setenv("IMAGE_FORMAT", "AVIF")
    assert load_settings().output_formats == ("avif",)
    monkeypatch.setenv("IMAGE_FORMATS", " avif , WEBP ")
    assert load_settings().output_formats == ("avif", "webp")
    monkeypatch.delenv("IMAGE_FORMAT")
    monkeypatch.setenv("IMAGE_FORMATS", "")
    assert load_settings().output_formats == ("webp",)  # empty: the shorthand's default


@pytest.mark.parametrize(
    ("formats", "shorthand", "named"),
    [
        ("webp,jpeg", None, "IMAGE_FORMATS"),
        ("webp,webp", None, "IMAGE_FORMATS"),
        ("webp,avif", "avif", "IMAGE_FORMAT"),
    ],
)
def test_a_bad_list_stops_the_program_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, formats: str, shorthand: str | None, named: str
) -> None:
    monkeypatch.setenv("IMAGE_FORMATS", formats)
    if shorthand:
        monkeypatch.setenv("IMAGE_FORMAT", shorthand)
    with pytest.raises(ConfigError, match=named):
        load_settings()


def test_each_format_gets_its_own_quality_and_signature(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGE_FORMATS", "webp,avif")
    monkeypatch.setenv("AVIF_SPEED", "6")
    pipeline = PipelineSettings.from_settings(load_settings())
    assert [(r.format, r.quality) for r in pipeline.renders] == [("webp", 85), ("avif", 70)]
    assert pipeline.render.format == "webp"
    assert pipeline.format_signatures == {"webp": "webp-q85-m4-v3", "avif": "avif-q70-s6-v3"}
    assert pipeline.signature == "webp-q85-m4-v3+avif-q70-s6-v3"
    assert split_signature(pipeline.signature) == ("webp-q85-m4-v3", "avif-q70-s6-v3")
    assert len(pipeline.signature) <= 64  # the catalog column's width


def test_every_size_in_each_format_from_one_render() -> None:
    source = io.BytesIO()
    Image.effect_noise((1200, 800), 48).convert("RGB").save(source, "JPEG", quality=90)
    formats = (RenderSettings(format="webp"), RenderSettings(format="avif", quality=70))
    from tvdb_images.imaging.validate import ValidationLimits

    limits = ValidationLimits(max_bytes=10_000_000, max_pixels=50_000_000, max_frames=10)
    both = render_renditions(source.getvalue(), formats, limits).renditions
    assert [(r.size, r.format) for r in both] == [(s, f) for s in SIZES for f in ("webp", "avif")]
    for rendition in both:
        with Image.open(io.BytesIO(rendition.data)) as image:
            assert image.format.lower() == rendition.format
            assert image.size == (rendition.width, rendition.height)
    # The same bytes as rendering each format alone: one decode and resize serve both.
    for settings in formats:
        alone = render_renditions(source.getvalue(), settings, limits).renditions
        assert [r.data for r in alone] == [r.data for r in both if r.format == settings.format]
    with pytest.raises(ValueError, match="one RenderSettings per output format"):
        render_renditions(source.getvalue(), (formats[0], formats[0]), limits)
    with pytest.raises(ValueError, match="same sizes"):
        render_renditions(source.getvalue(), (formats[0], replace(formats[1], sizes=("small",))), limits)


def _task(status: str, signature: str | None) -> RenderTask:
    path = "series/0a/1b/1/poster"
    return RenderTask(
        1, "series", 1, "poster", path, "jpeg", "c" * 64, status=status, render_signature=signature
    )


def test_a_rerender_renders_only_the_formats_not_current(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGE_FORMATS", "webp,avif")
    both = PipelineSettings.from_settings(load_settings())
    webp, avif = both.format_signatures["webp"], both.format_signatures["avif"]

    def plan(status: str, signature: str | None) -> tuple[list[str], tuple[str, ...]]:
        renders, kept = formats_to_render(_task(status, signature), both)
        return [r.format for r in renders], kept

    processed, downloaded = ArtworkStatus.PROCESSED.value, ArtworkStatus.DOWNLOADED.value
    assert plan(processed, webp) == (["avif"], ("webp",))  # AVIF added: WebP kept as it is
    assert plan(processed, f"{webp}+{avif}") == ([], ("webp", "avif"))
    assert plan(processed, f"{avif}+{webp}") == ([], ("webp", "avif"))  # reordered: catalog only
    assert plan(processed, "webp-q70-m4-v3") == (["webp", "avif"], ())  # another WebP quality
    assert plan(processed, "mirror") == (["webp", "avif"], ())
    assert plan(downloaded, f"{webp}+{avif}") == (["webp", "avif"], ())  # a new source: everything


def test_recording_keeps_the_listed_formats_drops_the_others_and_checks_completeness(
    sqlite_catalog: Catalog,
) -> None:
    """What `record_renditions` leaves for each case of a changed list, and how completeness counts
    an artwork stored in several formats (every size of each)."""
    line = '{"content_type": "series", "id": 5, "artworks": [{"id": 50, "type": "poster", "url": "https://artworks.thetvdb.com/p.jpg"}]}'
    import_catalog_lines(sqlite_catalog, [line])
    with sqlite_catalog.session() as session:
        queue.assign_missing_layout(session)
        artwork = session.get(Artwork, 50)
        path, shard = artwork.storage_path, artwork.shard
        task = RenderTask(50, "series", 5, "poster", path, "jpeg", "c" * 64, source_url=artwork.source_url)
    webp, avif = "webp-q85-m4-v3", "avif-q70-s8-v3"

    def stored(image_format: str, signature: str) -> list[results.StoredRendition]:
        return [
            results.StoredRendition(
                size,
                image_format,
                f"{path}/{size}.{image_format}",
                f"https://cdn.invalid/{path}/{size}.{image_format}",
                1,
                1,
                9,
                f"image/{image_format}",
                "0" * 64,
                render_signature=signature,
            )
            for size in SIZES
        ]

    def record(renditions: list, signature: str, keep: tuple[str, ...], primary: str) -> dict[str, set[str]]:
        with sqlite_catalog.session() as session:
            results.record_renditions(
                session, task, renditions, signature=signature, keep_formats=keep, primary_format=primary
            )
        with sqlite_catalog.session() as session:
            artwork = session.get(Artwork, 50)
            assert artwork.render_signature == signature
            assert artwork.local_image_url.endswith(f"/original.{primary}")
            formats: dict[str, set[str]] = {}
            for r in artwork.renditions:
                formats.setdefault(r.format, set()).add(r.render_signature)
            return formats

    assert record(stored("webp", webp), webp, (), "webp") == {"webp": {webp}}
    assert record(stored("avif", avif), f"{webp}+{avif}", ("webp",), "webp") == {
        "webp": {webp},
        "avif": {avif},
    }
    assert record([], f"{avif}+{webp}", ("avif", "webp"), "avif") == {"webp": {webp}, "avif": {avif}}
    with sqlite_catalog.session() as session:
        complete = processed_completeness(session, Scope())
    assert complete.processed == {("series", shard): 1} and not complete.incomplete
    with sqlite_catalog.session() as session:
        session.execute(
            delete(ArtworkRendition).where(
                ArtworkRendition.format == "avif", ArtworkRendition.size == "small"
            )
        )
    with sqlite_catalog.session() as session:
        assert processed_completeness(session, Scope()).incomplete == {("series", shard): [50]}
    assert record([], webp, ("webp",), "webp") == {"webp": {webp}}  # AVIF dropped from the list
