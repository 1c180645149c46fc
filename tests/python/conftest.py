import os

import pytest

import twinfer

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def config_path(name):
    return os.path.join(ROOT, "configs", name)


@pytest.fixture
def h100x8():
    return twinfer.load_config(config_path("h100x8.json"))


@pytest.fixture
def small_trace():
    """300 requests at 40 rps with ~500-token prompts: enough to queue on one H100, not on eight."""
    return twinfer.synthetic_trace({"requests": 300, "rate_rps": 40,
                                    "input": {"kind": "lognormal", "mean": 500, "max": 4000},
                                    "output": {"kind": "lognormal", "mean": 150, "max": 1000}}, seed=3)


@pytest.fixture
def cpu_tiny():
    return twinfer.load_config(config_path("cpu_tiny.json"))
