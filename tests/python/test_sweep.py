import numpy as np

import twinfer


def test_sweep_over_a_2x2_grid_and_two_loads(h100x8, small_trace, capfd):
    # numpy values, as a grid built with np.arange or from a DataFrame would hold.
    grid = {"policies.router.name": ["round_robin", "least_work"], "policies.batcher.max_num_seqs": np.array([8, 256])}
    df = twinfer.sweep(h100x8, small_trace, grid=grid, rate_scales=[1, 2], processes=2, progress=True)
    assert len(df) == 8
    assert (df["error"] == "").all()
    assert sorted(set(df["policies.router.name"])) == ["least_work", "round_robin"]
    assert sorted(set(df["policies.batcher.max_num_seqs"])) == [8, 256]
    assert sorted(set(df["rate_scale"])) == [1.0, 2.0]
    for column in ("latency_p50_ms", "latency_p99_ms", "ttft_p99_ms", "throughput_rps", "goodput_rps",
                   "slo_attainment"):
        assert df[column].notna().all(), column
    assert (df["completed"] == 300).all()
    # Each point equals the same run done directly.
    row = df[(df["policies.router.name"] == "least_work") & (df["policies.batcher.max_num_seqs"] == 8)
             & (df["rate_scale"] == 2.0)].iloc[0]
    direct = twinfer.simulate(h100x8.with_overrides(["policies.router.name=least_work",
                                                     "policies.batcher.max_num_seqs=8"]), small_trace, rate_scale=2)
    assert row["latency_p99_ms"] == direct.summary["latency_ms"]["p99"]
    assert "sweep [" in capfd.readouterr().err


def test_sweep_draws_no_progress_bar_by_default_when_stderr_is_not_a_terminal(h100x8, small_trace, capfd):
    df = twinfer.sweep(h100x8, small_trace, grid={"policies.router.name": ["round_robin"]}, processes=1)
    assert len(df) == 1 and (df["error"] == "").all()
    assert "sweep [" not in capfd.readouterr().err


def test_sweep_reports_a_bad_point_without_losing_the_others(h100x8, small_trace):
    df = twinfer.sweep(h100x8, small_trace, grid={"policies.router.name": ["round_robin", "nope"]}, processes=2,
                       progress=False)
    assert list(df["error"] == "") == [True, False]
    assert "unknown router 'nope'" in df["error"].iloc[1]
