"""Bad images in a real sync: refused before any expensive decode, recorded with their cause, nothing
stored, and the good images of the same partition processed in the same run.

The `sync_images` Dagster job runs over one partition on PostgreSQL + SeaweedFS S3. The origin serves
the corpus's bad files and generated variants under names and Content-Types that lie, next to good
images that are also mislabelled. Pillow's `Image.open` and `load` are watched throughout the run to
prove where refusal happens: bombs never reach Pillow at all, and no bad input is ever decoded.
"""

from __future__ import annotations

import hashlib
import io
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageFile
from sqlalchemy import select

from tvdb_images.catalog.db import Catalog
from tvdb_images.catalog.models import Artwork, ArtworkStatus
from tvdb_images.storage import Bucket
from tvdb_images.storage.layout import SIZES, shard_of
from tvdb_images_tests.support.convergence import audit
from tvdb_images_tests.support.hostile_inputs import bad_inputs
from tvdb_images_tests.support.origins import LoopbackOrigin, respond
from tvdb_images_tests.support.reliability_log import record
from tvdb_images_tests.support.reliability_setup import (
    import_items,
    one_partition_items,
    production_settings,
    run_sync_images,
)
from tvdb_images_tests.support.services import SeaweedFS

MAX_FRAMES = 100

# Good images, mislabelled too: corpus file -> (path served as, Content-Type sent or None).
GOOD: dict[str, tuple[str, str | None]] = {
    "tvdb/poster_a.jpg": ("/good/poster.png", "text/html"),
    "tvdb/clearlogo_a.png": ("/good/logo.gif", "application/octet-stream"),
    "edge/4.webp": ("/good/art.jpg", None),
    "edge/animated-loop-3.webp": ("/good/loop.jpg", "image/jpeg"),
    "tvdb/episode_a.jpg": ("/good/episode.jpg", "image/jpeg"),
}


class PillowWatch:
    """Which source bytes (by sha256) reached Pillow's `Image.open`, and which were decoded (`load`).

    Every plugin class with a `load` of its own is watched as well as the base one, since some (WebP,
    AVIF) decode there before handing raw pixels to `ImageFile.load`.
    """

    def __init__(self) -> None:
        self.opened: Counter[str] = Counter()
        self.decoded: Counter[str] = Counter()
        self._sources: dict[int, tuple[Image.Image, str]] = {}  # id -> (image kept alive, digest)
        self._lock = threading.Lock()

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        Image.init()
        real_open = Image.open
        monkeypatch.setattr(Image, "open", self._watched_open(real_open))
        loaders = {ImageFile.ImageFile} | {
            factory
            for factory, _accept in Image.OPEN.values()
            if isinstance(factory, type) and "load" in vars(factory)
        }
        for cls in loaders:
            monkeypatch.setattr(cls, "load", self._watched_load(vars(cls)["load"]))

    def _watched_open(self, real_open: Any) -> Any:
        def watched_open(fp: Any, *args: Any, **kwargs: Any) -> Image.Image:
            digest = hashlib.sha256(fp.getvalue()).hexdigest() if isinstance(fp, io.BytesIO) else None
            if digest is not None:
                with self._lock:
                    self.opened[digest] += 1
            image = real_open(fp, *args, **kwargs)
            if digest is not None:
                with self._lock:
                    self._sources[id(image)] = (image, digest)
            return image

        return watched_open

    def _watched_load(self, real_load: Any) -> Any:
        def watched_load(image: Image.Image, *args: Any, **kwargs: Any) -> Any:
            with self._lock:
                source = self._sources.get(id(image))
                if source is not None:
                    self.decoded[source[1]] += 1
            return real_load(image, *args, **kwargs)

        return watched_load


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _serve(origin: LoopbackOrigin, path: str, data: bytes, content_type: str | None) -> None:
    origin.route(path, respond(200, data, {"Content-Type": content_type} if content_type else {}))


def test_bad_images_are_refused_before_decode_and_store_nothing(
    postgres_catalog: Catalog,
    seaweedfs: SeaweedFS,
    s3_bucket_names: dict[Bucket, str],
    s3_store,
    corpus_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bad = bad_inputs(corpus_dir, max_frames=MAX_FRAMES)
    good_data = {name: (corpus_dir / name).read_bytes() for name in GOOD}
    with LoopbackOrigin() as origin:
        for item in bad:
            _serve(origin, item.served_as, item.data, item.content_type)
        for name, (path, content_type) in GOOD.items():
            _serve(origin, path, good_data[name], content_type)
        urls = [origin.url(item.served_as) for item in bad] + [origin.url(path) for path, _ in GOOD.values()]
        items = one_partition_items("episodes", urls)
        import_items(postgres_catalog, items)
        shard = shard_of("episodes", items[0].content_id)
        settings = production_settings(
            postgres_catalog.url,
            seaweedfs,
            s3_bucket_names,
            ALLOWED_SOURCE_HOSTS=origin.netloc,
            FETCH_MAX_RETRIES=0,
            MAX_IMAGE_FRAMES=MAX_FRAMES,
        )
        watch = PillowWatch()
        watch.install(monkeypatch)

        assert run_sync_images(settings, "episodes", shard).success
        hits_after_first = {item.served_as: origin.hits(item.served_as) for item in bad}
        # Refusals are final: a second sync asks the origin for none of them again.
        assert run_sync_images(settings, "episodes", shard).success
        hits_after_second = {item.served_as: origin.hits(item.served_as) for item in bad}

    bad_by_url = dict(zip(urls, bad, strict=False))
    with postgres_catalog.session() as session:
        rows = {row.source_url: row for row in session.scalars(select(Artwork))}

    # The good ones, mislabelled or not, were processed in the same run.
    for name, (path, _) in GOOD.items():
        row = rows[origin.url(path)]
        assert row.status == ArtworkStatus.PROCESSED, (name, row.failure_cause, row.failure_detail)
        assert len(row.renditions) == len(SIZES)
        assert watch.decoded[_digest(good_data[name])] >= 1, f"the watch missed the decode of {name}"

    for url, entry in bad_by_url.items():
        row = rows[url]
        stored = [obj.key for bucket in Bucket for obj in s3_store.list(bucket, row.storage_path + "/")]
        digest = _digest(entry.data)
        opened, decoded = watch.opened[digest], watch.decoded[digest]
        record(
            "bad_input",
            input=entry.name,
            served_as=f"`{entry.served_as}` as {entry.content_type or 'no Content-Type'}",
            expected=entry.cause,
            recorded=f"{row.status}: {row.failure_cause}",
            objects_stored=len(stored),
            pillow_open=opened,
            pillow_decode=decoded,
            requests=hits_after_second[entry.served_as],
        )
        assert (row.status, row.failure_cause) == (ArtworkStatus.FAILED, entry.cause), (
            entry.name,
            row.failure_detail,
        )
        assert row.failure_detail and not row.failure_retryable and row.attempts == 1
        assert row.local_image_url is None and row.renditions == [] and row.source_format is None
        assert stored == [], (entry.name, stored)
        assert decoded == 0, f"{entry.name} reached Pillow's decoder"
        if entry.bomb:
            assert opened == 0, f"{entry.name} reached Pillow at all"
        assert hits_after_first[entry.served_as] == hits_after_second[entry.served_as] == 1

    # The partition holds exactly what the catalog references: nothing for any bad input.
    result = audit(postgres_catalog, s3_store, [("episodes", shard)])
    assert result.missing == [] and result.unreferenced == set()
    assert result.processed == len(GOOD) and result.failed == len(bad)
