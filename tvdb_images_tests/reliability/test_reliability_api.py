"""The serving API under attack: schemathesis over its own OpenAPI schema, and the admin surface.

* Schemathesis generates requests for every operation of `create_app()`'s schema (valid and invalid
  paths, queries and headers), once without credentials and once with the admin token, against
  catalogs and stores filled by real syncs (SQLite + local disk, and PostgreSQL + SeaweedFS S3). No
  response may be a 5xx, and every object-store call any request causes must name a key of the
  storage layout.
* Admin tokens: any Authorization header that is not `Bearer <the token>` is refused with 401,
  including near misses built from the token itself; the comparison is `hmac.compare_digest`.
* Sync launches are rate limited per client: past the burst, 429 with Retry-After.

Dagster's GraphQL endpoint is stood in for by a small in-process responder that accepts every launch
(the launch path against a real Dagster webserver is tested in test_serving_dagster.py), so admin
calls with the right token get past Dagster and the fuzzing reaches every route's own validation.
"""

from __future__ import annotations

import hmac
import json
import random
import re
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from serving.app import create_app
from serving.dagster_client import DagsterClient
from tvdb_images.storage.layout import is_layout_key
from tvdb_images_tests.support.examples import examples
from tvdb_images_tests.support.reliability_log import record
from tvdb_images_tests.support.serving_data import (
    ADMIN_TOKEN,
    MAIN_ARTWORK,
    MIRRORED,
    PENDING,
    RecordingStore,
    ServedData,
)

GOOD = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
FAKE_DAGSTER = "http://dagster.invalid/graphql"
ADMIN_ENDPOINTS = [
    ("POST", "/api/v1/admin/sync/images/series/101"),
    ("POST", "/api/v1/admin/sync/images/missing?content_type=series&limit=10"),
    ("POST", "/api/v1/admin/sync/images/cleanup"),
    ("GET", f"/api/v1/admin/tasks/{uuid.uuid4()}"),
]


def _dagster_responder() -> httpx.MockTransport:
    """Answers `launchRun`, `runOrError` and `runsOrError` the way Dagster's GraphQL API does."""
    launched: dict[str, str] = {}

    def answer(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        variables = body.get("variables", {})
        if "launchRun" in body["query"]:
            job = variables["executionParams"]["selector"]["jobName"]
            run_id = str(uuid.uuid4())
            launched[run_id] = job
            run = {"runId": run_id, "status": "QUEUED", "jobName": job}
            data: dict[str, Any] = {"launchRun": {"__typename": "LaunchRunSuccess", "run": run}}
        elif "runsOrError" in body["query"]:
            data = {"runsOrError": {"__typename": "Runs", "results": []}}  # no earlier run to reuse
        elif "runOrError" in body["query"]:
            run_id = variables["runId"]
            if run_id in launched:
                data = {
                    "runOrError": {
                        "__typename": "Run",
                        "runId": run_id,
                        "status": "STARTED",
                        "jobName": launched[run_id],
                        "creationTime": time.time(),
                        "startTime": time.time(),
                        "endTime": None,
                    }
                }
            else:
                data = {"runOrError": {"__typename": "RunNotFoundError", "message": f"{run_id} not found"}}
        else:
            data = {"repositoriesOrError": {"__typename": "RepositoryConnection", "nodes": []}}
        return httpx.Response(200, json={"data": data})

    return httpx.MockTransport(answer)


@contextmanager
def served_app(data: ServedData, **overrides: Any) -> Iterator[tuple[Any, RecordingStore]]:
    store = RecordingStore(data.store)
    dagster = DagsterClient(FAKE_DAGSTER, transport=_dagster_responder())
    settings = data.settings.model_copy(update={"dagster_graphql_url": FAKE_DAGSTER, **overrides})
    app = create_app(settings, catalog=data.catalog, store=store, dagster=dagster)
    try:
        yield app, store
    finally:
        dagster.close()


# -- schemathesis ------------------------------------------------------------------------------------


class Tally:
    def __init__(self) -> None:
        self.statuses: Counter[int] = Counter()
        self.server_errors: list[str] = []


def _stored_targets(operation: Any) -> list[dict[str, Any]]:
    """Path parameters naming artwork the syncs stored, so that generated requests reach storage too
    (ids drawn at random almost never exist)."""
    names = {parameter.name for parameter in operation.path_parameters}
    rows = [*MAIN_ARTWORK, MIRRORED, PENDING]
    if "artwork_id" in names:
        return [{"artwork_id": artwork_id} for _, _, artwork_id, *_ in rows]
    if {"content_type", "content_id", "image_type"} <= names:
        return [{"content_type": ct, "content_id": cid, "image_type": it} for ct, cid, _, it, *_ in rows]
    if {"content_type", "content_id"} <= names:
        return [{"content_type": ct, "content_id": cid} for ct, cid, *_ in rows]
    return []


@st.composite
def _seeding_global_random(draw: st.DrawFn, strategy: st.SearchStrategy[Any]) -> Any:
    """Draw from `strategy` with the global `random` seeded from Hypothesis's own data, then restored.

    schemathesis's negative-mode mutations call `random.random()` while drawing; seeded like this,
    those choices are reproducible and shrinkable, and the global state Hypothesis checks is unchanged."""
    state = random.getstate()
    random.seed(draw(st.integers(0, 2**32 - 1)))
    try:
        return draw(strategy)
    finally:
        random.setstate(state)


def _send_generated(operation: Any, headers: dict[str, str], count: int, tally: Tally) -> None:
    strategies = [
        operation.as_strategy(mode, path_parameters=target)
        for mode in GenerationMode
        for target in [None, *_stored_targets(operation)]
    ]

    @settings(max_examples=count, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=_seeding_global_random(st.one_of(strategies)))
    def send(case: schemathesis.Case) -> None:
        response = case.call(headers=headers or None)
        tally.statuses[response.status_code] += 1
        if response.status_code >= 500:
            tally.server_errors.append(f"{case.method} {case.formatted_path} -> {response.status_code}")
        case.validate_response(response, checks=[not_a_server_error])

    send()


def _fuzz(data: ServedData, examples_per_operation: int) -> tuple[int, Tally, list[str]]:
    """Every operation, without and with the admin token; returns the operation count, the tally and
    every storage key the requests made the store touch."""
    tally = Tally()
    operations = 0
    # A burst large enough that the fuzzing reaches the routes' validation, not the rate limit.
    with served_app(data, admin_sync_burst=1000, admin_sync_rate_per_minute=6000) as (app, store):
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        for result in schema.get_all_operations():
            operation = result.ok()
            operations += 1
            admin = operation.path.startswith("/api/v1/admin")
            for headers in ({}, GOOD) if admin else ({},):
                _send_generated(operation, headers, examples_per_operation, tally)
        touched = [key for _, _, key in store.calls]
    return operations, tally, touched


@pytest.mark.parametrize(
    ("setup", "per_operation"),
    [
        pytest.param("embedded", examples(default=30, soak=80), id="embedded"),
        pytest.param("production", examples(default=8, soak=15), id="production"),
    ],
)
def test_schemathesis_finds_no_server_error(
    request: pytest.FixtureRequest, setup: str, per_operation: int
) -> None:
    data: ServedData = request.getfixturevalue(f"{setup}_data")
    operations, tally, keys = _fuzz(data, per_operation)
    outside = sorted({key for key in keys if not is_layout_key(key)})
    backends = {"embedded": "SQLite + local disk", "production": "PostgreSQL + SeaweedFS S3"}
    record(
        "schemathesis",
        setup=f"{data.name} ({backends[setup]})",
        operations=operations,
        requests=sum(tally.statuses.values()),
        by_status=", ".join(f"{code}: {n}" for code, n in sorted(tally.statuses.items())),
        server_errors=len(tally.server_errors),
        storage_keys_touched=len(keys),
        keys_outside_layout=len(outside),
    )
    assert tally.server_errors == []
    assert outside == [], outside[:10]
    assert tally.statuses[200] > 0 and any(code in tally.statuses for code in (401, 422))


# -- admin tokens ----------------------------------------------------------------------------------------


def _near_misses(token: str) -> list[str]:
    """Tokens one small step from the right one."""
    flipped = token[0].swapcase() + token[1:] if token[0].isalpha() else "x" + token[1:]
    return [
        token[:-1],
        token + "0",
        token[1:],
        flipped,
        token.upper(),
        token[::-1],
        token[:8],
        f"{token}\x00",
    ]


printable = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
headers = st.one_of(
    st.text(printable, max_size=80),
    st.builds(lambda t: f"Bearer {t}", st.text(printable, min_size=1, max_size=80)),
    st.builds(lambda s: f"{s} {ADMIN_TOKEN}", st.sampled_from(["Basic", "Token", "Bearer:", "JWT"])),
    st.builds(lambda t: f"Bearer {t}", st.sampled_from(_near_misses(ADMIN_TOKEN))),
    st.builds(lambda t: f"Bearer {ADMIN_TOKEN} {t}", st.text(printable, min_size=1, max_size=10)),
)  # fmt: skip


def _holds_the_token(header: str) -> bool:
    scheme, _, rest = header.partition(" ")
    return scheme.lower() == "bearer" and rest.strip() == ADMIN_TOKEN


def test_admin_refuses_every_token_that_is_not_exactly_right(embedded_data: ServedData) -> None:
    tried: Counter[int] = Counter()
    with served_app(embedded_data, admin_sync_burst=1000) as (app, _), TestClient(app) as client:

        @settings(max_examples=300, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(
            header=headers.filter(lambda h: not _holds_the_token(h)),
            endpoint=st.sampled_from(ADMIN_ENDPOINTS),
        )
        def refused(header: str, endpoint: tuple[str, str]) -> None:
            response = client.request(endpoint[0], endpoint[1], headers={"Authorization": header.strip()})
            tried[response.status_code] += 1
            assert response.status_code == 401, (header, response.status_code, response.text)
            assert response.headers["www-authenticate"].startswith("Bearer")

        refused()
        for method, path in ADMIN_ENDPOINTS:
            accepted = client.request(method, path, headers=GOOD)
            assert accepted.status_code in (202, 404), accepted.text  # 404: the fake task id is unknown
    record("admin", check="Authorization headers other than `Bearer <token>` (generated, near misses)",
           requests=sum(tried.values()), outcome=f"all {tried[401]} refused with 401")  # fmt: skip


def test_admin_token_comparison_is_constant_time(
    embedded_data: ServedData, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Wrong tokens of every length, and of the right length differing in one character, are refused,
    and each of them reached `hmac.compare_digest` (whose time depends on neither content)."""
    compared: list[bytes] = []
    real_compare = hmac.compare_digest

    def compare_digest(a: Any, b: Any) -> bool:
        compared.append(bytes(a))
        return real_compare(a, b)

    monkeypatch.setattr(hmac, "compare_digest", compare_digest)
    same_length = [
        ADMIN_TOKEN[:-1] + chr(ord(ADMIN_TOKEN[-1]) ^ 1),
        chr(ord(ADMIN_TOKEN[0]) ^ 1) + ADMIN_TOKEN[1:],
    ]
    other_lengths = ["x" * n for n in range(1, len(ADMIN_TOKEN) + 9) if n != len(ADMIN_TOKEN)]
    wrong = [*same_length, *other_lengths]
    path = ADMIN_ENDPOINTS[3][1]
    with served_app(embedded_data) as (app, _), TestClient(app) as client:
        answers = {t: client.get(path, headers={"Authorization": f"Bearer {t}"}) for t in wrong}
        right = client.get(path, headers=GOOD)
    refused = {t: a.status_code for t, a in answers.items() if a.status_code == 401}
    assert len(refused) == len(wrong), {t: a.status_code for t, a in answers.items() if t not in refused}
    assert all('error="invalid_token"' in a.headers["www-authenticate"] for a in answers.values())
    assert [token.encode() for token in wrong] == [c for c in compared if c != ADMIN_TOKEN.encode()]
    assert right.status_code == 404 and compared[-1] == ADMIN_TOKEN.encode()  # 404: unknown task id
    outcome = f"all {len(refused)} refused, each compared by `hmac.compare_digest`"
    record("admin", check="token comparison (wrong tokens of every length, same-length near misses)",
           requests=len(wrong) + 1, outcome=outcome)  # fmt: skip


def test_sync_launches_are_rate_limited(embedded_data: ServedData) -> None:
    burst = embedded_data.settings.admin_sync_burst
    with served_app(embedded_data) as (app, _), TestClient(app) as client:
        answers = [client.post("/api/v1/admin/sync/images/missing", headers=GOOD) for _ in range(burst + 10)]
    codes = [a.status_code for a in answers]
    assert codes[:burst] == [202] * burst, codes
    assert codes[burst:] == [429] * 10, codes
    assert all(int(a.headers["retry-after"]) >= 1 for a in answers[burst:])
    outcome = f"{codes.count(202)} accepted, {codes.count(429)} answered 429 with Retry-After"
    record("admin", check=f"sync launches in a burst (ADMIN_SYNC_BURST={burst})", requests=len(codes),
           outcome=outcome)  # fmt: skip


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/images/artwork/1/..%2F..%2F..%2Fetc%2Fpasswd",
        "/api/v1/images/series/101/poster/%2e%2e%2f%2e%2e%2fsecret",
        "/api/v1/images/series/101/poster/small?v=../../etc/passwd",
        "/api/v1/images/series/101%00/poster/small",
        "/api/v1/images/artwork/5003/original?v=%00",
    ],
)
def test_hostile_paths_and_queries_stay_inside_the_layout(embedded_data: ServedData, path: str) -> None:
    with served_app(embedded_data) as (app, store), TestClient(app) as client:
        response = client.get(path)
    assert response.status_code < 500 and response.status_code != 200
    assert all(is_layout_key(key) for _, _, key in store.calls), store.calls
    assert not re.search(r"passwd|secret", " ".join(key for _, _, key in store.calls))
