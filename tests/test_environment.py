"""Cores and threads: the one thread count every backend is given, counted in physical cores by default."""

import os

import pytest

from runlocalai_bench.environment import compute_threads, cpu_info, device_profile, physical_cores, usable_cores


def test_physical_cores_count_smt_siblings_once():
    physical, logical = physical_cores(), usable_cores()
    assert 1 <= physical <= logical
    siblings = set()
    for cpu in os.sched_getaffinity(0):
        path = f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list"
        if os.path.exists(path):
            siblings.add(open(path).read().strip())
    if siblings:  # one sibling group per physical core (hyperthreads of a core list the same group)
        assert physical == len(siblings)


def test_thread_choices():
    assert compute_threads() == compute_threads("physical") == physical_cores()
    assert compute_threads("logical") == usable_cores()
    assert compute_threads(3) == 3
    for bad in (0, -1, "all", True):
        with pytest.raises(ValueError, match="'physical', 'logical' or a positive integer"):
            compute_threads(bad)


def test_a_cpu_claims_core_count_is_physical_cores():
    """A 4-core/8-thread laptop must not pass for an 8-core CPU."""
    env = {"cpu": {"model": "Laptop CPU", "usable_cores": 8, "usable_physical_cores": 4}}
    profile = device_profile(env, "cpu")
    assert profile["cores"] == 4 and profile["label"] == "Laptop CPU (4 cores, 8 threads)"
    # Records from before 2026-12: the usable logical count and the machine's physical count, the smaller wins.
    old = {"cpu": {"model": "Old laptop", "usable_cores": 8, "physical_cores": 4}}
    assert device_profile(old, "cpu")["cores"] == 4
    assert device_profile({"cpu": {"model": "Old VM", "usable_cores": 2}}, "cpu")["cores"] == 2
    assert cpu_info()["usable_physical_cores"] == physical_cores()
