"""Traces to and from pandas DataFrames, through the native CSV format (so that the C++ reader
validates every row and the conversions match the files exactly)."""

import os
import tempfile

import pandas as pd

from ._twinfer import Trace, read_trace

NATIVE_COLUMNS = ["arrival_s", "input_tokens", "output_tokens", "model", "priority", "deadline_ms", "session",
                  "hash_ids", "hash_block_tokens", "prompt_token_ids"]


def trace_from_dataframe(df, source="dataframe"):
    """A Trace from a DataFrame with columns arrival_s, input_tokens, output_tokens and optionally
    model, priority, deadline_ms, session, hash_ids (space-separated ids, as in the CSV),
    hash_block_tokens and prompt_token_ids (the prompt as space-separated token ids) (the native CSV
    columns). Rows are sorted by arrival."""
    missing = [c for c in NATIVE_COLUMNS[:3] if c not in df.columns]
    if missing:
        raise ValueError(f"trace_from_dataframe: missing column(s) {missing}; need {NATIVE_COLUMNS[:3]}")
    unknown = [c for c in df.columns if c not in NATIVE_COLUMNS]
    if unknown:
        raise ValueError(f"trace_from_dataframe: unknown column(s) {unknown}; valid: {NATIVE_COLUMNS}")
    columns = [c for c in NATIVE_COLUMNS if c in df.columns]
    out = df[columns].copy()
    if "hash_block_tokens" in out.columns:  # integers, also where some rows have none
        out["hash_block_tokens"] = out["hash_block_tokens"].astype("Int64")
    with tempfile.TemporaryDirectory(prefix="twinfer_trace_") as tmp:
        path = os.path.join(tmp, f"{source}.csv")
        out.to_csv(path, index=False, float_format="%.6f")
        return read_trace(path, "native_csv")


def _trace_to_dataframe(self):
    """The trace as a DataFrame with the native CSV columns (one row per request, by id)."""
    with tempfile.TemporaryDirectory(prefix="twinfer_trace_") as tmp:
        path = os.path.join(tmp, "trace.csv")
        self.write(path)
        return pd.read_csv(path, keep_default_na=False, dtype={"hash_ids": str, "prompt_token_ids": str},
                           na_values={"deadline_ms": [""], "hash_block_tokens": [""]})


Trace.to_dataframe = _trace_to_dataframe
