import pandas as pd
import pytest

import twinfer


def test_synthetic_trace_is_seeded():
    spec = {"requests": 50, "rate_rps": 10}
    a = twinfer.synthetic_trace(spec, seed=7).to_dataframe()
    b = twinfer.synthetic_trace(spec, seed=7).to_dataframe()
    c = twinfer.synthetic_trace(spec, seed=8).to_dataframe()
    assert len(a) == 50
    assert a.equals(b)
    assert not a.equals(c)


def test_dataframe_round_trip_keeps_every_field():
    df = pd.DataFrame({"arrival_s": [0.0, 0.5, 0.25], "input_tokens": [10, 20, 30], "output_tokens": [1, 2, 3],
                       "model": ["m", "", "m"], "priority": [0, 1, 2], "deadline_ms": [float("nan"), 100.0, 50.0],
                       "session": ["a", "b", ""]})
    tr = twinfer.trace_from_dataframe(df)
    assert len(tr) == 3
    # Sorted by arrival: the 0.25 s request becomes id 1.
    assert [tr[i].arrival_us for i in range(3)] == [0, 250000, 500000]
    assert tr[1].input_tokens == 30 and tr[1].priority == 2 and tr[1].session == ""
    assert tr[1].deadline_us == 250000 + 50000
    assert tr[0].deadline_us == twinfer.NEVER_US
    out = tr.to_dataframe()
    assert list(out["input_tokens"]) == [10, 30, 20]
    assert list(out["model"]) == ["m", "m", ""]
    assert out["deadline_ms"].isna().tolist() == [True, False, False]
    assert list(out["deadline_ms"].iloc[1:]) == [50.0, 100.0]


def test_file_round_trip(tmp_path):
    tr = twinfer.synthetic_trace({"requests": 20, "rate_rps": 5}, seed=1)
    path = str(tmp_path / "t.csv")
    tr.write(path)
    back = twinfer.read_trace(path)
    assert back.source == path
    assert back.to_dataframe().equals(tr.to_dataframe())


def test_scaled_divides_arrivals():
    tr = twinfer.synthetic_trace({"requests": 20, "rate_rps": 5}, seed=1)
    fast = tr.scaled(2.0)
    assert len(fast) == 20
    assert fast[19].arrival_us == int(tr[19].arrival_us / 2 + 0.5)  # halves round away from zero


def test_bad_trace_line_names_file_line_and_field(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("arrival_s,input_tokens,output_tokens\n0,10,1\n1,abc,1\n")
    with pytest.raises(twinfer.Error, match=r"bad.csv:3.*input_tokens"):
        twinfer.read_trace(str(path))


def test_dataframe_without_required_columns_is_refused():
    with pytest.raises(ValueError, match="output_tokens"):
        twinfer.trace_from_dataframe(pd.DataFrame({"arrival_s": [0.0], "input_tokens": [1]}))


def test_hash_ids_round_trip_through_a_dataframe():
    df = pd.DataFrame({"arrival_s": [0.0, 1.0, 2.0], "input_tokens": [40, 30, 5], "output_tokens": [1, 1, 1],
                       "hash_ids": ["7 8 9", "7 8", ""], "hash_block_tokens": [16, 16, None]})
    tr = twinfer.trace_from_dataframe(df)
    assert tr[0].hash_ids == [7, 8, 9] and tr[0].hash_block_tokens == 16
    assert tr[1].hash_ids == [7, 8]
    assert tr[2].hash_ids == [] and tr[2].hash_block_tokens == 0
    out = tr.to_dataframe()
    assert list(out["hash_ids"]) == ["7 8 9", "7 8", ""]
    back = twinfer.trace_from_dataframe(out)
    assert [back[i].hash_ids for i in range(3)] == [[7, 8, 9], [7, 8], []]


def test_prompt_token_ids_round_trip_through_a_dataframe_and_give_hash_ids():
    shared = " ".join(str(t) for t in range(16))
    df = pd.DataFrame({"arrival_s": [0.0, 1.0], "input_tokens": [18, 17], "output_tokens": [1, 1],
                       "prompt_token_ids": [shared + " 40 41", shared + " 50"]})
    tr = twinfer.trace_from_dataframe(df)
    assert tr[0].prompt_token_ids == list(range(16)) + [40, 41]
    assert tr[0].hash_block_tokens == 16
    assert len(tr[0].hash_ids) == 1 and tr[0].hash_ids == tr[1].hash_ids
    out = tr.to_dataframe()
    assert list(out["prompt_token_ids"]) == [shared + " 40 41", shared + " 50"]
    assert list(out.columns) == ["arrival_s", "input_tokens", "output_tokens", "prompt_token_ids"]
    with pytest.raises(twinfer.Error, match=r":2: prompt_token_ids: 2 token ids for input_tokens 3"):
        twinfer.trace_from_dataframe(pd.DataFrame({"arrival_s": [0.0], "input_tokens": [3], "output_tokens": [1],
                                                   "prompt_token_ids": ["1 2"]}))


def test_a_multi_turn_synthetic_trace_shares_its_history():
    spec = {"requests": 40, "rate_rps": 5, "input": {"kind": "constant", "mean": 50},
            "output": {"kind": "constant", "mean": 20},
            "prefix": {"block_tokens": 16, "tenants": 1, "system_tokens": {"kind": "constant", "mean": 64},
                       "conversations": 2, "turns": {"kind": "constant", "mean": 4}}}
    tr = twinfer.synthetic_trace(spec, seed=3)
    by_session = {}
    for i in range(len(tr)):
        by_session.setdefault(tr[i].session, []).append(tr[i])
    for turns in by_session.values():
        for earlier, later in zip(turns, turns[1:]):
            # Each turn re-sends the last one's prompt and output, so it starts with its full blocks.
            assert later.input_tokens == earlier.input_tokens + earlier.output_tokens + 50
            shared = earlier.input_tokens // 16
            assert later.hash_ids[:shared] == earlier.hash_ids[:shared]
        # Every conversation starts with the tenant's system prompt: 4 blocks.
        assert turns[0].hash_ids[:4] == tr[0].hash_ids[:4]
