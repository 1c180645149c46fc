import os

import twinfer


def test_summary_counts_conserve_and_requests_have_one_row_each(h100x8, small_trace):
    res = twinfer.simulate(h100x8, small_trace, seed=1)
    r = res.summary["requests"]
    assert r["total"] == len(small_trace) == 300
    assert r["completed"] + r["rejected"] + r["dropped"] == r["total"]
    df = res.requests
    assert len(df) == 300
    assert sorted(df["id"]) == list(range(300))
    assert (df["outcome"] == "completed").sum() == r["completed"]
    assert os.path.exists(res.timeline_path)


def test_same_seed_same_results(h100x8, small_trace):
    a = twinfer.simulate(h100x8, small_trace, seed=5)
    b = twinfer.simulate(h100x8, small_trace, seed=5)
    a.summary.pop("sim")
    b.summary.pop("sim")
    assert a.summary == b.summary
    assert a.requests.equals(b.requests)


def test_out_dir_receives_the_files(h100x8, small_trace, tmp_path):
    out = tmp_path / "run"
    res = twinfer.simulate(h100x8, small_trace, out_dir=str(out))
    assert res.out_dir == str(out)
    assert {"summary.json", "requests.csv", "timeline.json"} <= set(os.listdir(out))


def test_rate_scale_compresses_the_run(h100x8, small_trace):
    slow = twinfer.simulate(h100x8, small_trace, rate_scale=1.0)
    fast = twinfer.simulate(h100x8, small_trace, rate_scale=4.0)
    assert fast.summary["duration_s"] < slow.summary["duration_s"]


def test_default_trace_of_the_config_is_used_when_none_is_given(h100x8):
    res = twinfer.simulate(h100x8)
    assert res.summary["requests"]["total"] == 2000


def test_dataframe_trace_is_accepted(h100x8, small_trace):
    res = twinfer.simulate(h100x8, small_trace.to_dataframe())
    assert res.summary["requests"]["total"] == 300
