"""A stage report's time by phase: wall seconds, and the CPU the working thread used meanwhile."""

from __future__ import annotations

import threading
import time

from tvdb_images.pipeline.report import StageReport


def spin(seconds: float) -> None:
    until = time.thread_time() + seconds
    while time.thread_time() < until:
        pass


def test_waiting_costs_wall_time_and_no_cpu_while_work_costs_both() -> None:
    report = StageReport(stage="download")
    with report.timed("fetch"):
        time.sleep(0.2)  # as a thread waiting on a socket
    with report.timed("validate"):
        spin(0.1)
    assert report.seconds_by_phase["fetch"] >= 0.2 and report.cpu_seconds_by_phase["fetch"] < 0.05
    assert report.cpu_seconds_by_phase["validate"] >= 0.1
    assert report.cpu_seconds_by_phase["validate"] <= report.seconds_by_phase["validate"] + 0.001
    assert set(report.as_dict()["cpu_seconds_by_phase"]) == {"fetch", "validate"}


def test_each_thread_counts_its_own_cpu_only() -> None:
    report = StageReport(stage="render")
    busy = threading.Thread(target=spin, args=(0.3,))
    busy.start()
    with report.timed("upload"):  # another thread burns CPU while this one waits
        busy.join()
    assert report.seconds_by_phase["upload"] >= 0.25
    assert report.cpu_seconds_by_phase["upload"] < 0.05


def test_time_of_a_phase_adds_up_over_its_occurrences() -> None:
    report = StageReport(stage="render")
    report.add_time("render", 2.0, 1.5)
    report.add_time("render", 1.0, 0.5)
    assert report.seconds_by_phase["render"] == 3.0 and report.cpu_seconds_by_phase["render"] == 2.0


def test_work_on_a_thread_counts_for_the_partition_it_is_working_on() -> None:
    report = StageReport(stage="render")

    def work(partition: str, size: int) -> None:
        with report.working_on(partition):
            with report.timed("render"):
                spin(0.02)
            report.add_bytes(bytes_in=size, bytes_out=size // 2, objects_written=5)

    threads = [
        threading.Thread(target=work, args=(p, n)) for p, n in (("series|00", 1000), ("movies|1c", 30))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report.add_success("series|00")
    report.add_success("movies|1c")
    report.add_failure("too_many_pixels", "40000 x 40000", "movies|1c")
    report.add_time("catalog", 0.5)  # a batched write, shared by partitions: the run's total only

    series, movies = report.by_partition["series|00"], report.by_partition["movies|1c"]
    assert (series.succeeded, series.failed, series.bytes_in, series.bytes_out) == (1, 0, 1000, 500)
    assert (movies.succeeded, movies.failed, movies.bytes_in) == (1, 1, 30)
    assert dict(movies.failures_by_cause) == {"too_many_pixels": 1} and not series.failures_by_cause
    assert (report.succeeded, report.failed, report.bytes_in, report.objects_written) == (2, 1, 1030, 10)
    assert set(series.seconds_by_phase) == {"render"} and report.seconds_by_phase["catalog"] == 0.5
    assert (
        report.seconds_by_phase["render"]
        == series.seconds_by_phase["render"] + movies.seconds_by_phase["render"]
    )


def test_each_partition_keeps_its_own_counts() -> None:
    report = StageReport(stage="download")
    report.add_success("series|00", bytes_in=10)
    report.add_success("series|00", bytes_in=5)
    report.add_failure("empty", "0 bytes", "people|ff")
    assert report.by_partition["series|00"].succeeded == 2 and report.by_partition["series|00"].bytes_in == 15
    assert report.by_partition["people|ff"].failed == 1 and not report.by_partition["series|00"].failed
    assert (report.succeeded, report.failed, report.bytes_in) == (2, 1, 15)
