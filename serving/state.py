"""What one API process shares between requests: settings, the catalog (a session factory for the
admin and stats endpoints, a cached reader for the image and metadata ones), the object store and its
byte cache, the Dagster client, the admin rate limiter, the view counter (serving.views), the
metrics and a few threads for bounded readiness probes."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from serving.byte_cache import RenditionByteCache
from serving.catalog_gauges import CatalogGauges
from serving.dagster_client import DagsterClient
from serving.events import NO_RECORDER
from serving.launches import Launcher
from serving.lookups import CatalogLookups, TtlCache
from serving.metrics import ServingMetrics
from serving.popular_gauges import PopularGauges
from serving.queries import CatalogReader
from serving.ratelimit import TokenBucketLimiter, worker_count
from serving.stats_cache import StatsCache
from serving.views import ViewAnalytics
from tvdb_images.catalog.db import Catalog
from tvdb_images.config import Settings
from tvdb_images.storage import ObjectStore, store_from_settings


@dataclass
class ServingState:
    settings: Settings
    catalog: Catalog
    store: ObjectStore
    dagster: DagsterClient
    sync_limiter: TokenBucketLimiter
    lookups: CatalogLookups
    byte_cache: RenditionByteCache
    launcher: Launcher
    views: ViewAnalytics
    metrics: ServingMetrics | None = None  # None with METRICS_ENABLED=false
    probes: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=4, thread_name_prefix="readyz")
    )
    recount_lock: threading.Lock = field(default_factory=threading.Lock)
    stats_cache: StatsCache = field(default_factory=StatsCache)
    _owned: list[object] = field(default_factory=list)

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        catalog: Catalog | None = None,
        store: ObjectStore | None = None,
        dagster: DagsterClient | None = None,
    ) -> ServingState:
        """Use what the caller passes (tests), build the rest from the settings and close only that."""
        owned: list[object] = []
        if catalog is None:
            catalog = Catalog(settings.resolved_database_url)
            owned.append(catalog)
        if dagster is None:
            dagster = DagsterClient(settings.dagster_graphql_url)
            owned.append(dagster)
        # Its own engine (no pre-ping, autocommit) on the catalog the caller chose.
        reader = CatalogReader.for_url(catalog.url)
        owned.append(reader)
        metrics = None
        if settings.metrics_enabled:
            metrics = ServingMetrics()
            metrics.add_collector(CatalogGauges(catalog.engine, settings.catalog_metrics_seconds))
            metrics.add_collector(PopularGauges(catalog.engine, settings.catalog_metrics_seconds))
        recorder = metrics or NO_RECORDER
        return cls(
            settings=settings,
            catalog=catalog,
            store=store or store_from_settings(settings),
            dagster=dagster,
            sync_limiter=TokenBucketLimiter.share_of(
                settings.admin_sync_rate_per_minute / 60.0, settings.admin_sync_burst, worker_count()
            ),
            lookups=CatalogLookups(
                reader, TtlCache(settings.serving_cache_seconds, settings.serving_cache_entries), recorder
            ),
            byte_cache=RenditionByteCache.with_megabytes(settings.serving_byte_cache_mb, recorder),
            launcher=Launcher(dagster, catalog.engine),
            metrics=metrics,
            views=ViewAnalytics(
                catalog,
                enabled=settings.view_analytics,
                interval=settings.view_flush_seconds,
                max_keys=settings.view_max_keys,
            ),
            _owned=owned,
        )

    def close(self) -> None:
        if self.metrics is not None:
            self.metrics.flush()
        self.probes.shutdown(wait=False, cancel_futures=True)
        self.launcher.close()
        for resource in self._owned:
            if isinstance(resource, Catalog | CatalogReader):
                resource.dispose()
            elif isinstance(resource, DagsterClient):
                resource.close()
