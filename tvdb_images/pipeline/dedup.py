"""Exact deduplication in the render stage: an identical source already rendered with the same settings
is shared instead of rendered, and an artwork about to write its own keys first hands any set other
artworks share from under its path over to one of them.

Shared objects stay where they were rendered (no copy: the bytes are stored once). The catalog lists,
per object, every artwork that names it (catalog/sharing.py); the hand-over is what keeps "a source URL
change on one member leaves the others intact": the owner's new renditions would overwrite the old
keys, so the others get a copy under the first of them's own path, and are repointed, before that.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from sqlalchemy.orm import Session

from tvdb_images.catalog import results, sharing
from tvdb_images.catalog.db import Catalog
from tvdb_images.catalog.queue import RenderTask
from tvdb_images.catalog.results import StoredPlaceholders, StoredRendition
from tvdb_images.catalog.sharing import Holder, Move
from tvdb_images.registry import OUTPUT_FORMATS
from tvdb_images.storage import RENDITION_CACHE_CONTROL, Bucket, ObjectStore, StorageError
from tvdb_images.storage.layout import MIME_BY_EXTENSION, SIZES, rendition_key

log = logging.getLogger(__name__)
T = TypeVar("T")

_EXTENSIONS = tuple(sorted({f.extension for f in OUTPUT_FORMATS.values()}))


class HandOverBlocked(StorageError):
    """No artwork sharing a key can take it over without overwriting a key shared in turn."""


def own_keys(storage_path: str) -> list[str]:
    """Every rendition key an artwork's render may write: all sizes in all output formats."""
    return [rendition_key(storage_path, size, ext) for size in SIZES for ext in _EXTENSIONS]


def find_donor(catalog: Catalog, task: RenderTask, signature: str) -> int | None:
    with catalog.session() as session:
        return sharing.find_donor(
            session, source_checksum=task.source_checksum, signature=signature, artwork_id=task.artwork_id
        )


def shares_objects(catalog: Catalog, task: RenderTask) -> bool:
    """Whether the artwork's recorded renditions name another artwork's objects: such an artwork is
    re-rendered in full (every listed format), never partly, so its rows never mix the two."""
    with catalog.session() as session:
        return sharing.shares_objects(session, task.artwork_id)


def release_own_keys(catalog: Catalog, store: ObjectStore, task: RenderTask) -> int:
    """Before `task`'s artwork writes its own keys: move every object of them that other artworks share
    to one of those artworks' own key (copy, then repoint in one transaction). Returns objects moved.

    The old object is left in place until the caller overwrites it, so no row ever names a missing key;
    the heir's copy is unreferenced until the repoint commits, and the grace period covers it."""
    keys = own_keys(task.storage_path)
    with catalog.session() as session:
        holders = sharing.holders_of(session, keys, besides=[task.artwork_id])
    if not holders:
        return 0
    moves = _plan(catalog, holders, besides=task.artwork_id, store=store)
    for move in moves:
        data = store.get(Bucket.THUMBNAILS, move.old_key)
        extension = move.new_key.rsplit(".", 1)[1]
        store.put(
            Bucket.THUMBNAILS,
            move.new_key,
            data,
            content_type=MIME_BY_EXTENSION[extension],
            cache_control=RENDITION_CACHE_CONTROL,
        )
    with catalog.session() as session:
        locked = sharing.lock_holders(session, keys, besides=task.artwork_id)
        unplanned = {h.storage_key for h in locked} - {m.old_key for m in moves}
        if unplanned:  # shared since the plan was made: try again on the next run
            raise HandOverBlocked(f"{len(unplanned)} keys of {task.storage_path} were shared meanwhile")
        sharing.repoint(session, moves, besides=task.artwork_id)
    log.info("handed %d shared objects of %s over before re-rendering it", len(moves), task.storage_path)
    return len(moves)


def _plan(catalog: Catalog, holders: list[Holder], *, besides: int, store: ObjectStore) -> list[Move]:
    """For each shared key, its heir: the lowest-id holder whose own key for it nobody else names."""
    by_key: dict[str, list[Holder]] = {}
    for holder in holders:
        by_key.setdefault(holder.storage_key, []).append(holder)
    moves: list[Move] = []
    with catalog.session() as session:
        for key, candidates in by_key.items():
            extension = key.rsplit(".", 1)[1]
            for heir in candidates:
                target = rendition_key(heir.storage_path, heir.size, extension)
                if not sharing.holders_of(session, [target], besides=[heir.artwork_id, besides]):
                    url = store.url(Bucket.THUMBNAILS, target)
                    moves.append(Move(old_key=key, new_key=target, new_url=url, heir_id=heir.artwork_id))
                    break
            else:
                raise HandOverBlocked(f"no artwork sharing {key} can take it over")
    return moves


@dataclass(frozen=True)
class Shared:
    """The render stage's outcome for an artwork whose identical source is already rendered: by a
    recorded donor (its rows are re-read under lock when recorded), or earlier in this very run."""

    donor_id: int
    renditions: tuple[StoredRendition, ...] | None = None  # the run's own render, already stored
    placeholders: StoredPlaceholders | None = None  # with `renditions`: the run's render's


@dataclass
class _First:
    done: threading.Event = field(default_factory=threading.Event)
    shared: Shared | None = None


class RunShares:
    """Identical sources within one run: the first of them renders (or finds a donor), the others wait
    for it and share its renditions; if it fails, each of them renders on its own."""

    def __init__(self, catalog: Catalog, store: ObjectStore, signature: str) -> None:
        self.catalog = catalog
        self.store = store
        self.signature = signature
        self._lock = threading.Lock()
        self._first: dict[str, _First] = {}

    def render_once(self, task: RenderTask, render: Callable[[], T]) -> T | Shared:
        """`render()`'s outcome, or a share. Raises StorageError if a hand-over could not be made.

        Whether it renders or shares, the artwork stops naming what its own keys hold now: objects
        there that others share are handed over first, so an artwork whose rows point elsewhere never
        holds keys others name (what makes every later hand-over find an heir)."""
        release_own_keys(self.catalog, self.store, task)
        with self._lock:
            first = self._first.get(task.source_checksum)
            leader = first is None
            if first is None:
                first = self._first[task.source_checksum] = _First()
        if not leader:
            first.done.wait()
            if first.shared is not None:
                return first.shared
            return self._share_or_render(task, render)
        try:
            outcome = self._share_or_render(task, render)
            if isinstance(outcome, Shared):
                first.shared = Shared(outcome.donor_id)
            elif (renditions := getattr(outcome, "renditions", None)) and not getattr(
                outcome, "kept_formats", None
            ):  # only a full render (every listed format) is shared: a partial one is not a whole set
                first.shared = Shared(
                    task.artwork_id, tuple(renditions), getattr(outcome, "placeholders", None)
                )
            return outcome
        finally:
            first.done.set()
            if first.shared is None:
                with self._lock:
                    self._first.pop(task.source_checksum, None)

    def _share_or_render(self, task: RenderTask, render: Callable[[], T]) -> T | Shared:
        donor = find_donor(self.catalog, task, self.signature)
        if donor is not None:
            return Shared(donor)
        return render()


def record_shared(task: RenderTask, outcome: Shared, signature: str) -> Callable[[Session], None]:
    def apply(session: Session) -> None:
        if outcome.renditions is not None:
            results.record_renditions(
                session,
                task,
                outcome.renditions,
                signature=signature,
                keep_formats=(),
                primary_format=sharing.primary_format_of(outcome.renditions, signature),
                placeholders=outcome.placeholders,
            )
        elif not sharing.record_shared(session, task, outcome.donor_id, signature=signature):
            log.info(
                "artwork %s: donor %s changed meanwhile; rendered next run", task.artwork_id, outcome.donor_id
            )

    return apply
