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


def test_merged_reports_add_cpu_by_phase() -> None:
    first, second = StageReport(stage="render"), StageReport(stage="render")
    first.add_time("render", 2.0, 1.5)
    second.add_time("render", 1.0, 0.5)
    first.merge(second)
    assert first.seconds_by_phase["render"] == 3.0 and first.cpu_seconds_by_phase["render"] == 2.0
