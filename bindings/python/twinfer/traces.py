"""Traces to and from pandas DataFrames, through the native CSV format (so that the C++ reader
validates every row and the conversions match the files exactly)."""

import os
import tempfile

import pandas as pd

from ._twinfer import Trace, read_trace

NATIVE_COLUMNS = ["arrival_s", "input_tokens", "output_tokens", "model", "priority", "deadline_ms", "session"]


def trace_from_dataframe(df, source="dataframe"):
    """A Trace from a DataFrame with columns arrival_s, input_tokens, output_tokens and optionally
    model, priority, deadline_ms, session (the native CSV columns). Rows are sorted by arrival."""
    missing = [c for c in NATIVE_COLUMNS[:3] if c not in df.columns]
    if missing:
        raise ValueError(f"trace_from_dataframe: missing column(s) {missing}; need {NATIVE_COLUMNS[:3]}")
    unknown = [c for c in df.columns if c not in NATIVE_COLUMNS]
    if unknown:
        raise ValueError(f"trace_from_dataframe: unknown column(s) {unknown}; valid: {NATIVE_COLUMNS}")
    columns = [c for c in NATIVE_COLUMNS if c in df.columns]
    with tempfile.TemporaryDirectory(prefix="twinfer_trace_") as tmp:
        path = os.path.join(tmp, f"{source}.csv")
        df[columns].to_csv(path, index=False, float_format="%.6f")
        return read_trace(path, "native_csv")


def _trace_to_dataframe(self):
    """The trace as a DataFrame with the native CSV columns (one row per request, by id)."""
    with tempfile.TemporaryDirectory(prefix="twinfer_trace_") as tmp:
        path = os.path.join(tmp, "trace.csv")
        self.write(path)
        return pd.read_csv(path, keep_default_na=False, na_values={"deadline_ms": [""]})


Trace.to_dataframe = _trace_to_dataframe
