"""A small client for Dagster's GraphQL API: launch a run of a job, find runs by tag, read a run.

The one hand-written GraphQL client of the project (the tests' helpers for backfills and
materializations, tvdb_images_tests/support/dagster_api.py, are built on it). dagster-graphql's
`DagsterGraphQLClient` is installed but does not serve the API process:

* Import cost. The API never imports Dagster, and `dagster_graphql` imports all of it: measured with
  `python -X importtime -c "import serving.app, dagster_graphql"` (2-core box, load average 11-17
  from other test runs), `serving.app` took 9.2-11.2 s cumulative and `dagster_graphql` 9.3-9.9 s more,
  doubling the time before a worker can answer (unloaded the ratio is the same).
* What it lacks. Runs by tag with a status filter (`runsOrError`, the idempotency lookup of
  serving/launches.py), a run's creation, start and end times (the task status endpoint; it returns
  the status only), and backfills or materializations (the tests). Its one `timeout` covers every
  call, where launching a run over many partitions needs longer (`launch_timeout`) than a lookup, and
  it has no connect timeout of its own. Launch tags and run config (partition ranges are tags) it has.

So the admin endpoints' calls are written against the schema directly (`launchRun`, `runOrError`,
`runsOrError`, as in dagster-graphql 1.13). The job's code location is looked up once through
`repositoriesOrError` when the configured one (`tvdb_images`, the name in workspace.yaml) does not
host it, so a webserver started with `-m tvdb_images.definitions` (whose location is named after the
module) works as well.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

DEFAULT_LOCATION_NAME = "tvdb_images"
DEFAULT_REPOSITORY_NAME = "__repository__"

LAUNCH_RUN_MUTATION = """
mutation LaunchRun($executionParams: ExecutionParams!) {
  launchRun(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId status jobName } }
    ... on RunConfigValidationInvalid { errors { message path } }
    ... on PipelineNotFoundError { message }
    ... on InvalidStepError { invalidStepKey }
    ... on InvalidOutputError { stepKey invalidOutputName }
    ... on Error { message }
  }
}
"""

RUN_QUERY = """
query RunStatus($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { runId status jobName creationTime startTime endTime }
    ... on RunNotFoundError { message }
    ... on PythonError { message }
  }
}
"""

FIND_RUNS_QUERY = """
query FindRuns($filter: RunsFilter!) {
  runsOrError(filter: $filter, limit: 1) {
    __typename
    ... on Runs { results { runId status jobName tags { key value } } }
    ... on Error { message }
  }
}
"""

JOB_LOCATIONS_QUERY = """
query JobLocations {
  repositoriesOrError {
    __typename
    ... on RepositoryConnection { nodes { name location { name } jobs { name } } }
    ... on PythonError { message }
  }
}
"""


class DagsterUnavailable(RuntimeError):
    """Dagster cannot take the request now: unreachable, erroring, or the job's code is not loaded."""


class DagsterError(RuntimeError):
    """Dagster refused the request (invalid run config, ...): retrying the same request will not help."""


class RunNotFound(LookupError):
    pass


@dataclass(frozen=True)
class LaunchedRun:
    run_id: str
    status: str
    job_name: str
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    status: str
    job_name: str
    created_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None


@dataclass
class _Selector:
    location: str
    repository: str


@dataclass
class DagsterClient:
    """Talks to one Dagster webserver's `/graphql` endpoint; safe to share between threads."""

    url: str
    location_name: str = DEFAULT_LOCATION_NAME
    repository_name: str = DEFAULT_REPOSITORY_NAME
    timeout: float = 10.0
    # Launching a run over many partitions keeps Dagster busy for a while (see the cleanup endpoint).
    launch_timeout: float = 60.0
    transport: httpx.BaseTransport | None = None
    _http: httpx.Client | None = field(init=False, default=None, repr=False)
    _selectors: dict[str, _Selector] = field(init=False, default_factory=dict, repr=False)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock, repr=False)

    def _client(self) -> httpx.Client:
        """Built on first use: httpx imports its command line (rich, click, pygments) with it, ~0.17 s
        that the API's workers need not spend before they can answer."""
        with self._lock:
            if self._http is None:
                import httpx

                self._http = httpx.Client(
                    timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 3.0)),
                    transport=self.transport,
                    headers={"Content-Type": "application/json"},
                )
            return self._http

    def close(self) -> None:
        with self._lock:
            if self._http is not None:
                self._http.close()

    def launch_run(
        self, job_name: str, run_config: Mapping[str, Any], tags: Mapping[str, str] | None = None
    ) -> LaunchedRun:
        selector = self._selector(job_name)
        result = self._launch(job_name, selector, run_config, tags or {})
        if result["__typename"] == "PipelineNotFoundError":
            # The workspace may have been reloaded under another location name: look it up again.
            with self._lock:
                self._selectors.pop(job_name, None)
            selector = self._selector(job_name, discover=True)
            result = self._launch(job_name, selector, run_config, tags or {})
        kind = result["__typename"]
        if kind == "LaunchRunSuccess":
            run = result["run"]
            return LaunchedRun(run_id=run["runId"], status=run["status"], job_name=run["jobName"])
        if kind == "PipelineNotFoundError":
            raise DagsterUnavailable(f"job {job_name} is not loaded in Dagster: {result.get('message')}")
        if kind == "PythonError":
            raise DagsterUnavailable(f"Dagster failed to launch {job_name}: {result.get('message')}")
        if kind == "RunConfigValidationInvalid":
            problems = "; ".join(e["message"] for e in result.get("errors", []))
            raise DagsterError(f"Dagster refused the run config of {job_name}: {problems}")
        raise DagsterError(f"Dagster refused to launch {job_name}: {kind}: {result.get('message', '')}")

    def find_run(self, tags: Mapping[str, str], statuses: Sequence[str] = ()) -> LaunchedRun | None:
        """The newest run carrying all these tags (and, if given, in one of these statuses)."""
        run_filter: dict[str, Any] = {"tags": [{"key": k, "value": v} for k, v in tags.items()]}
        if statuses:
            run_filter["statuses"] = list(statuses)
        result = self._execute(FIND_RUNS_QUERY, {"filter": run_filter}).get("runsOrError") or {}
        if result.get("__typename") != "Runs":
            raise DagsterUnavailable(f"Dagster could not list runs: {result.get('message')}")
        if not result["results"]:
            return None
        run = result["results"][0]
        return LaunchedRun(
            run_id=run["runId"],
            status=run["status"],
            job_name=run["jobName"],
            tags={tag["key"]: tag["value"] for tag in run["tags"]},
        )

    def run(self, run_id: str) -> RunInfo:
        result = self._execute(RUN_QUERY, {"runId": run_id})["runOrError"]
        kind = result["__typename"]
        if kind == "RunNotFoundError":
            raise RunNotFound(run_id)
        if kind != "Run":
            raise DagsterUnavailable(f"Dagster could not read run {run_id}: {result.get('message')}")
        return RunInfo(
            run_id=result["runId"],
            status=result["status"],
            job_name=result["jobName"],
            created_at=_timestamp(result.get("creationTime")),
            started_at=_timestamp(result.get("startTime")),
            ended_at=_timestamp(result.get("endTime")),
        )

    def query(
        self, document: str, variables: Mapping[str, Any] | None = None, *, timeout: float | None = None
    ) -> dict[str, Any]:
        """Any GraphQL document's `data` (operators' scripts and the tests read backfills with it);
        DagsterUnavailable or DagsterError as for the calls above."""
        return self._execute(document, variables or {}, timeout=timeout)

    def _launch(
        self, job_name: str, selector: _Selector, run_config: Mapping[str, Any], tags: Mapping[str, str]
    ) -> dict[str, Any]:
        params = {
            "selector": {
                "repositoryLocationName": selector.location,
                "repositoryName": selector.repository,
                "jobName": job_name,
            },
            "runConfigData": dict(run_config),
            "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in tags.items()]},
        }
        data = self._execute(LAUNCH_RUN_MUTATION, {"executionParams": params}, timeout=self.launch_timeout)
        return data["launchRun"]

    def _selector(self, job_name: str, *, discover: bool = False) -> _Selector:
        with self._lock:
            known = self._selectors.get(job_name)
        if known is not None:
            return known
        selector = _Selector(self.location_name, self.repository_name)
        if discover:
            selector = self._find_job(job_name) or selector
        with self._lock:
            self._selectors[job_name] = selector
        return selector

    def _find_job(self, job_name: str) -> _Selector | None:
        result = self._execute(JOB_LOCATIONS_QUERY, {})["repositoriesOrError"]
        if result["__typename"] != "RepositoryConnection":
            raise DagsterUnavailable(f"Dagster could not list its code locations: {result.get('message')}")
        hosts = [
            _Selector(node["location"]["name"], node["name"])
            for node in result["nodes"]
            if any(job["name"] == job_name for job in node["jobs"])
        ]
        # Prefer the configured location when several host a job of that name.
        hosts.sort(key=lambda s: (s.location != self.location_name, s.location))
        return hosts[0] if hosts else None

    def _execute(
        self, query: str, variables: Mapping[str, Any], *, timeout: float | None = None
    ) -> dict[str, Any]:
        import httpx

        try:
            response = self._client().post(
                self.url,
                json={"query": query, "variables": dict(variables)},
                timeout=httpx.Timeout(timeout or self.timeout, connect=min(self.timeout, 3.0)),
            )
        except httpx.TimeoutException as exc:
            raise DagsterUnavailable(f"Dagster at {self.url} did not answer in time ({exc})") from exc
        except httpx.HTTPError as exc:
            raise DagsterUnavailable(f"cannot reach Dagster at {self.url}: {exc}") from exc
        if response.status_code != 200:
            raise DagsterUnavailable(f"Dagster at {self.url} answered HTTP {response.status_code}")
        try:
            payload = response.json()
        except ValueError as exc:
            raise DagsterUnavailable(f"Dagster at {self.url} did not answer with JSON") from exc
        if payload.get("errors"):
            messages = "; ".join(str(e.get("message")) for e in payload["errors"])
            raise DagsterError(f"Dagster rejected the GraphQL request: {messages}")
        data = payload.get("data")
        if not isinstance(data, dict):
            raise DagsterUnavailable(f"Dagster at {self.url} answered without data")
        return data


def _timestamp(value: float | None) -> datetime | None:
    return datetime.fromtimestamp(value, tz=UTC) if value is not None else None
