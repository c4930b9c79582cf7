"""One asset check evaluation per partition of a ranged run.

Dagster 1.13 records an `AssetCheckResult` of a run over a partition range without a partition, and
leaves the range's planned per-partition evaluations unresolved (the UI counts them as skipped). A
check that yields an `AssetCheckEvaluation` for each partition instead resolves each planned row to
passed or failed, and points it at that partition's latest materialization, as Dagster does for a
single-partition run. The evaluations are logged as one batch of events, which the deployed event
log storage writes together when DAGSTER_EVENT_BATCH_SIZE is set (tvdb_images/deployment/instance_storage.py),
as Dagster logs a ranged run's materializations.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)
from dagster._core.events import DagsterEvent, DagsterEventBatchMetadata, generate_event_batch_id

from tvdb_images.partition_keys import partition_key


@dataclass(frozen=True)
class CheckOutcome:
    """A check's verdict on one partition."""

    passed: bool
    metadata: Mapping[str, Any] = field(default_factory=dict)
    description: str | None = None


def partition_evaluations(
    context: dg.AssetCheckExecutionContext,
    outcomes: Mapping[tuple[str, str], CheckOutcome],
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR,
) -> Iterator[DagsterEvent | dg.Output]:
    """An evaluation for each (content_type, shard) in `outcomes`, then the check step's output."""
    (check_key,) = context.selected_asset_check_keys
    keys = {pair: partition_key(*pair) for pair in outcomes}
    targets = _latest_materializations(context.instance, check_key.asset_key, set(keys.values()))
    step_context = context.get_step_execution_context()
    batch_id, last = generate_event_batch_id(), len(outcomes) - 1
    for index, (pair, outcome) in enumerate(outcomes.items()):
        evaluation = dg.AssetCheckEvaluation(
            asset_key=check_key.asset_key,
            check_name=check_key.name,
            passed=outcome.passed,
            metadata=dict(outcome.metadata),
            severity=severity,
            description=outcome.description,
            partition=keys[pair],
            target_materialization_data=targets.get(keys[pair]),
        )
        # As DagsterEvent.asset_check_evaluation logs it, with the batch a ranged run's events share.
        yield DagsterEvent.from_step(
            event_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION,
            step_context=step_context,
            event_specific_data=evaluation,
            message=f"Asset check '{check_key.name}' on '{check_key.asset_key.to_user_string()}' "
            f"{'passed' if outcome.passed else 'did not pass'} for partition {keys[pair]}.",
            batch_metadata=DagsterEventBatchMetadata(batch_id, index == last),
        )
    yield dg.Output(None)


def _latest_materializations(
    instance: dg.DagsterInstance, asset_key: dg.AssetKey, partitions: set[str]
) -> dict[str, AssetCheckEvaluationTargetMaterializationData]:
    """Each partition's latest materialization, in two queries whatever the number of partitions."""
    if not partitions:
        return {}
    storage_ids = instance.get_latest_storage_id_by_partition(
        asset_key, dg.DagsterEventType.ASSET_MATERIALIZATION, partitions
    )
    if not storage_ids:
        return {}
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset_key, storage_ids=list(storage_ids.values())),
        limit=len(storage_ids),
    ).records
    return {
        str(record.partition_key): AssetCheckEvaluationTargetMaterializationData(
            storage_id=record.storage_id, run_id=record.run_id, timestamp=record.timestamp
        )
        for record in records
    }
