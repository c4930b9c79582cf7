"""The few Dagster GraphQL calls an operator's script (or the stack test) makes: launch an asset backfill,
follow it and its runs, and read materialization metadata. They go through serving's client
(`DagsterClient.query`), the project's one GraphQL client."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from serving.dagster_client import DagsterClient
from tvdb_images_tests.support.waiting import wait_until

LAUNCH_BACKFILL = """
mutation LaunchBackfill($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message stack }
    ... on Error { message }
  }
}
"""

BACKFILL = """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill {
      status
      numPartitions
      runs { runId status tags { key value } startTime endTime }
    }
    ... on PythonError { message }
  }
}
"""

MATERIALIZATIONS = """
query Materializations($path: [String!]!, $limit: Int!) {
  assetOrError(assetKey: {path: $path}) {
    __typename
    ... on Asset {
      assetMaterializations(limit: $limit) {
        partition
        runId
        metadataEntries {
          label
          ... on IntMetadataEntry { intValue }
          ... on FloatMetadataEntry { floatValue }
          ... on JsonMetadataEntry { jsonString }
        }
      }
    }
  }
}
"""

BACKFILL_PROGRESS = """
query BackfillProgress($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill {
      isAssetBackfill
      assetBackfillData {
        assetBackfillStatuses {
          ... on AssetPartitionsStatusCounts {
            assetKey { path }
            numPartitionsTargeted
            numPartitionsInProgress
            numPartitionsMaterialized
            numPartitionsFailed
          }
        }
      }
      partitionStatusCounts { runStatus count }
    }
    ... on PythonError { message }
  }
}
"""

FINISHED_BACKFILL = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}


class GraphQLError(RuntimeError):
    """Dagster answered, but not with what was asked for (an error type in place of the result)."""


@dataclass(frozen=True)
class BackfillRun:
    run_id: str
    status: str
    tags: dict[str, str]
    start_time: float | None
    end_time: float | None


@dataclass(frozen=True)
class Backfill:
    status: str
    num_partitions: int
    runs: list[BackfillRun]


@dataclass
class DagsterAPI(DagsterClient):
    """Serving's client for the webserver's /graphql endpoint, with the backfill calls of the tests."""

    timeout: float = 30.0

    def launch_asset_backfill(
        self,
        assets: list[str],
        partition_names: list[str],
        *,
        tags: dict[str, str] | None = None,
        run_config: dict[str, Any] | None = None,
        title: str | None = None,
    ) -> str:
        """A backfill of `assets` over `partition_names`, as the UI's Materialize dialog creates it."""
        params: dict[str, Any] = {
            "assetSelection": [{"path": [asset]} for asset in assets],
            "partitionNames": partition_names,
            "tags": [{"key": key, "value": value} for key, value in (tags or {}).items()],
        }
        if run_config is not None:
            params["runConfigData"] = run_config
        if title:
            params["title"] = title
        result = self.query(LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]
        if result["__typename"] != "LaunchBackfillSuccess":
            raise GraphQLError(f"{result['__typename']}: {result.get('message')}\n{result.get('stack', '')}")
        return result["backfillId"]

    def launch_job_backfill(
        self,
        job: str,
        assets: list[str],
        partition_names: list[str],
        *,
        location: str = "tvdb_images",
        repository: str = "__repository__",
        tags: dict[str, str] | None = None,
    ) -> str:
        """A backfill of `job` over `partition_names`, as Jobs -> job -> "Materialize all..." creates it
        (a job backfill: the job's partition set, plus the job's assets)."""
        params: dict[str, Any] = {
            "selector": {
                "partitionSetName": f"{job}_partition_set",
                "repositorySelector": {"repositoryLocationName": location, "repositoryName": repository},
            },
            "assetSelection": [{"path": [asset]} for asset in assets],
            "partitionNames": partition_names,
            "fromFailure": False,
            "tags": [{"key": key, "value": value} for key, value in (tags or {}).items()],
        }
        result = self.query(LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]
        if result["__typename"] != "LaunchBackfillSuccess":
            raise GraphQLError(f"{result['__typename']}: {result.get('message')}\n{result.get('stack', '')}")
        return result["backfillId"]

    def backfill(self, backfill_id: str) -> Backfill:
        result = self.query(BACKFILL, {"id": backfill_id})["partitionBackfillOrError"]
        if result["__typename"] != "PartitionBackfill":
            raise GraphQLError(f"{result['__typename']}: {result.get('message')}")
        runs = [
            BackfillRun(
                run_id=run["runId"],
                status=run["status"],
                tags={tag["key"]: tag["value"] for tag in run["tags"]},
                start_time=run["startTime"],
                end_time=run["endTime"],
            )
            for run in result["runs"]
        ]
        return Backfill(status=result["status"], num_partitions=result["numPartitions"] or 0, runs=runs)

    def backfill_progress(self, backfill_id: str) -> dict[str, dict[str, int]]:
        """What the backfill page counts: per asset, partitions targeted, in progress, materialized and
        failed (asset backfills); or partitions per run status (job backfills, under "runs")."""
        result = self.query(BACKFILL_PROGRESS, {"id": backfill_id})["partitionBackfillOrError"]
        if result["__typename"] != "PartitionBackfill":
            raise GraphQLError(f"{result['__typename']}: {result.get('message')}")
        if not result["isAssetBackfill"]:
            return {"runs": {c["runStatus"]: c["count"] for c in result["partitionStatusCounts"]}}
        progress = {}
        for status in result["assetBackfillData"]["assetBackfillStatuses"]:
            if "assetKey" in status:
                progress["/".join(status["assetKey"]["path"])] = {
                    "targeted": status["numPartitionsTargeted"],
                    "in_progress": status["numPartitionsInProgress"],
                    "materialized": status["numPartitionsMaterialized"],
                    "failed": status["numPartitionsFailed"],
                }
        return progress

    def wait_for_backfill(self, backfill_id: str, *, timeout: float) -> Backfill:
        """Poll until the daemon has finished the backfill: it is complete and none of its runs is live."""
        seen: list[Backfill] = []

        def finished() -> Backfill | None:
            seen.append(self.backfill(backfill_id))
            runs_done = all(run.status in ("SUCCESS", "FAILURE", "CANCELED") for run in seen[-1].runs)
            return seen[-1] if seen[-1].status in FINISHED_BACKFILL and runs_done else None

        return wait_until(
            finished,
            timeout,
            1,
            lambda: (
                f"backfill {backfill_id} still {seen[-1].status}: "
                f"{[(run.run_id[:8], run.status) for run in seen[-1].runs]}"
            ),
        )

    def materializations(self, asset: str, *, limit: int = 100) -> list[dict[str, Any]]:
        """The latest materializations of an asset, each with its partition and metadata by label."""
        result = self.query(MATERIALIZATIONS, {"path": [asset], "limit": limit})["assetOrError"]
        if result["__typename"] != "Asset":
            return []
        events = []
        for event in result["assetMaterializations"]:
            metadata: dict[str, Any] = {}
            for entry in event["metadataEntries"]:
                for field in ("intValue", "floatValue", "jsonString"):
                    if field in entry:
                        metadata[entry["label"]] = entry[field]
            events.append({"partition": event["partition"], "run_id": event["runId"], "metadata": metadata})
        return events
