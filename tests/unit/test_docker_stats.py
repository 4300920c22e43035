import json
from pathlib import Path

import pytest

from model_serving.metrics.docker_stats import cpu_percent, memory_bytes, timestamp

pytestmark = pytest.mark.unit

SAMPLES = json.loads((Path(__file__).parents[1] / "fixtures" / "docker_stats_cgroup_v1.json").read_text())


def test_memory_is_usage_minus_inactive_file_cgroup_v1():
    sample = SAMPLES[1]
    expected = sample["memory_stats"]["usage"] - sample["memory_stats"]["stats"]["total_inactive_file"]
    assert memory_bytes(sample) == expected
    assert 30e6 < expected < 200e6


def test_memory_cgroup_v2():
    sample = {"memory_stats": {"usage": 1000, "stats": {"inactive_file": 300}}}
    assert memory_bytes(sample) == 700


def test_memory_missing_or_odd():
    assert memory_bytes({"memory_stats": {}}) is None
    assert memory_bytes({"memory_stats": {"usage": 100, "stats": {"inactive_file": 500}}}) == 100


def test_cpu_percent_matches_docker_stats_formula():
    sample = SAMPLES[1]
    cpu, pre = sample["cpu_stats"], sample["precpu_stats"]
    delta = cpu["cpu_usage"]["total_usage"] - pre["cpu_usage"]["total_usage"]
    system = cpu["system_cpu_usage"] - pre["system_cpu_usage"]
    assert cpu_percent(sample) == pytest.approx(delta / system * cpu["online_cpus"] * 100)


def test_cpu_percent_without_previous_sample():
    assert cpu_percent({"cpu_stats": {"cpu_usage": {"total_usage": 5}}, "precpu_stats": {}}) is None


def test_timestamp_keeps_sub_second_precision():
    first, second = (timestamp(s) for s in SAMPLES)
    assert 0.5 < second - first < 2.0
