import pytest

import twinfer
from conftest import config_path


class Exploding(twinfer.Router):
    def __init__(self, params):
        super().__init__()

    def route(self, request, view):
        if request.id == 5:
            raise ValueError("no route for request five")
        return 0


class ExplodingBatcher(twinfer.Batcher):
    def __init__(self, params):
        super().__init__()

    def next(self, state, now_us):
        raise KeyError("batcher lost its keys")


class BadReturn(twinfer.Router):
    def __init__(self, params):
        super().__init__()

    def route(self, request, view):
        return "worker zero"


class OutOfRange(twinfer.Router):
    def __init__(self, params):
        super().__init__()

    def route(self, request, view):
        return 99


def failing_factory(params):
    raise RuntimeError(f"cannot build with {params}")


twinfer.register_router("exploding", Exploding)
twinfer.register_router("bad_return", BadReturn)
twinfer.register_router("out_of_range", OutOfRange)
twinfer.register_router("failing_factory", failing_factory)
twinfer.register_router("not_a_router", lambda params: object())
twinfer.register_batcher("exploding_batcher", ExplodingBatcher)

TRACE = {"requests": 20, "rate_rps": 10}


def test_error_is_a_runtime_error():
    assert issubclass(twinfer.Error, RuntimeError)


def test_unknown_config_key_is_named():
    with pytest.raises(twinfer.Error, match=r"cluster.*bogus"):
        twinfer.load_config(config_path("h100x8.json"), overrides=["cluster.bogus=1"])


def test_unknown_policy_parameter_is_named(h100x8):
    cfg = h100x8.with_overrides(["policies.batcher.bogus=1"])
    with pytest.raises(twinfer.Error, match=r"policies.batcher.*bogus"):
        twinfer.simulate(cfg, twinfer.synthetic_trace(TRACE))


def test_unknown_top_level_key_in_a_dict_is_named():
    cfg = twinfer.load_config(config_path("h100x8.json")).to_dict()
    cfg["polices"] = {}
    with pytest.raises(twinfer.Error, match="polices"):
        twinfer.config_from_dict(cfg)


def test_unknown_policy_name_lists_the_valid_ones(h100x8):
    cfg = h100x8.with_overrides(["policies.router.name=nonexistent"])
    with pytest.raises(twinfer.Error, match=r"policies.router.*unknown router 'nonexistent'; valid: .*round_robin"):
        twinfer.simulate(cfg, twinfer.synthetic_trace(TRACE))


def test_missing_config_file_is_named():
    with pytest.raises(twinfer.Error, match="no_such.json"):
        twinfer.load_config("no_such.json")


def test_python_exception_in_a_router_comes_back_with_its_message(h100x8):
    with pytest.raises(twinfer.Error, match=r"policies.router \(exploding\).route\(\): ValueError: no route for request five"):
        twinfer.simulate(h100x8.with_overrides(["policies.router.name=exploding"]), twinfer.synthetic_trace(TRACE))


def test_python_exception_in_a_batcher_comes_back_with_its_message(h100x8):
    with pytest.raises(twinfer.Error, match=r"next\(\): KeyError: .*batcher lost its keys"):
        twinfer.simulate(h100x8.with_overrides(["policies.batcher=exploding_batcher"]), twinfer.synthetic_trace(TRACE))


def test_python_exception_in_a_factory_comes_back_with_its_message(h100x8):
    with pytest.raises(twinfer.Error, match=r"RuntimeError: cannot build with \{'k': 2\}"):
        twinfer.simulate(h100x8.with_overrides(['policies.router={"name": "failing_factory", "k": 2}']),
                         twinfer.synthetic_trace(TRACE))


def test_factory_returning_something_else_is_refused(h100x8):
    with pytest.raises(twinfer.Error, match="must return a twinfer.Router"):
        twinfer.simulate(h100x8.with_overrides(["policies.router.name=not_a_router"]), twinfer.synthetic_trace(TRACE))


def test_wrong_return_type_is_explained(h100x8):
    with pytest.raises(twinfer.Error, match="must return a worker index or a twinfer.RouteDecision, got 'worker zero'"):
        twinfer.simulate(h100x8.with_overrides(["policies.router.name=bad_return"]), twinfer.synthetic_trace(TRACE))


def test_worker_index_out_of_range_is_an_error_not_a_crash(h100x8):
    with pytest.raises(twinfer.Error, match="router 'out_of_range' chose worker 99 for request 0, but the cluster has 8 workers"):
        twinfer.simulate(h100x8.with_overrides(["policies.router.name=out_of_range"]), twinfer.synthetic_trace(TRACE))


def test_the_module_still_works_after_errors(h100x8):
    res = twinfer.simulate(h100x8, twinfer.synthetic_trace(TRACE))
    assert res.summary["requests"]["completed"] == 20
