import json

import pytest

import twinfer
from conftest import config_path


def test_load_config_with_overrides_changes_the_policy():
    cfg = twinfer.load_config(config_path("h100x8.json"), overrides=["policies.router.name=least_work"])
    assert cfg.to_dict()["policies"]["router"]["name"] == "least_work"
    assert cfg.source.endswith("configs/h100x8.json")


def test_worker_names_list_every_instance():
    cfg = twinfer.load_config(config_path("h100x8.json"))
    assert cfg.worker_names == [f"node/gpu{i}" for i in range(8)]


def test_dict_round_trip_gives_the_same_config():
    with open(config_path("h100x8.json")) as f:
        raw = json.load(f)
    cfg = twinfer.config_from_dict(raw, source="notebook")
    assert cfg.to_dict() == raw
    again = twinfer.config_from_dict(cfg.to_dict())
    assert again.worker_names == cfg.worker_names


def test_with_overrides_returns_a_new_config_and_leaves_the_old_one():
    cfg = twinfer.load_config(config_path("h100x8.json"))
    new = cfg.with_overrides(["policies.batcher.max_num_seqs=64"])
    assert new.to_dict()["policies"]["batcher"]["max_num_seqs"] == 64
    assert "max_num_seqs" not in cfg.to_dict()["policies"]["batcher"]


def test_default_trace_resolves_against_the_config_folder():
    cfg = twinfer.load_config(config_path("h100x8.json"))
    assert cfg.default_trace.endswith("configs/../traces/data/default_trace.csv")


def test_policy_names_list_the_builtins():
    names = twinfer.policy_names()
    assert "round_robin" in names["routers"]
    assert "continuous" in names["batchers"]
    assert "accept_all" in names["admissions"]
    assert "roofline" in names["cost_models"]


def test_numpy_values_in_a_dict_are_plain_json():
    import numpy as np

    cfg = twinfer.load_config(config_path("h100x8.json")).to_dict()
    cfg["policies"]["batcher"]["max_num_seqs"] = np.int64(48)
    assert twinfer.config_from_dict(cfg).to_dict()["policies"]["batcher"]["max_num_seqs"] == 48
    cfg["policies"]["batcher"]["max_num_seqs"] = object()
    with pytest.raises(TypeError, match="not representable in JSON"):
        twinfer.config_from_dict(cfg)
