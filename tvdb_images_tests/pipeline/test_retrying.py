"""The one retry shape (tvdb_images.retrying): attempts counted, waits asked for, the last error kept."""

from __future__ import annotations

import pytest

from tvdb_images.retrying import doubling, retrying


class Flaky:
    """Fails with `error` the first `failures` times it is called, then answers."""

    def __init__(self, failures: int, error: type[Exception] = ConnectionError) -> None:
        self.failures, self.error, self.calls = failures, error, 0

    def __call__(self, value: str) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error(f"failure {self.calls}")
        return value


def test_retries_until_it_succeeds_waiting_as_told() -> None:
    slept: list[float] = []
    told: list[tuple[int, str, float]] = []
    retry = retrying(
        attempts=4,
        retry_on=lambda exc: isinstance(exc, ConnectionError),
        wait=doubling(0.5),
        on_retry=lambda n, exc, delay: told.append((n, str(exc), delay)),
        sleep=slept.append,
    )
    flaky = Flaky(3)
    assert retry(flaky, "ok") == "ok" and flaky.calls == 4
    assert slept == [0.5, 1.0, 2.0]
    assert told == [(1, "failure 1", 0.5), (2, "failure 2", 1.0), (3, "failure 3", 2.0)]


def test_gives_up_after_its_attempts_with_the_last_error_itself() -> None:
    slept: list[float] = []
    retry = retrying(attempts=3, retry_on=lambda exc: True, sleep=slept.append)
    flaky = Flaky(10)
    with pytest.raises(ConnectionError, match="failure 3"):
        retry(flaky, "never")
    assert flaky.calls == 3 and slept == [0.0, 0.0]


def test_an_error_it_does_not_retry_ends_at_once() -> None:
    retry = retrying(attempts=5, retry_on=lambda exc: isinstance(exc, ConnectionError), sleep=pytest.fail)
    flaky = Flaky(1, error=ValueError)
    with pytest.raises(ValueError, match="failure 1"):
        retry(flaky, "never")
    assert flaky.calls == 1


def test_a_wait_may_give_up_with_an_error_of_its_own() -> None:
    def wait(attempt: int, exc: BaseException) -> float:
        raise TimeoutError(f"would wait too long after {exc}") from exc

    retry = retrying(attempts=5, retry_on=lambda exc: True, wait=wait, sleep=pytest.fail)
    flaky = Flaky(10)
    with pytest.raises(TimeoutError, match="after failure 1") as raised:
        retry(flaky, "never")
    assert flaky.calls == 1 and isinstance(raised.value.__cause__, ConnectionError)


def test_iterating_gives_each_attempt_its_number() -> None:
    numbers = []
    flaky = Flaky(2)
    for attempt in retrying(attempts=3, retry_on=lambda exc: True, sleep=lambda _: None):
        with attempt:
            numbers.append(attempt.retry_state.attempt_number)
            flaky("ok")
    assert numbers == [1, 2, 3]
