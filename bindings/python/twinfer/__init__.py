"""Twinfer: simulate and serve AI inference scheduling policies from Python.

The compiled extension ``_twinfer`` does all the work (configs, traces, policies, the SimGrid
simulator, the embedded runtime); this package adds thin conveniences: pandas conversions, run
results, batch inference and parameter sweeps. See bindings/API.md.
"""

from ._twinfer import (  # noqa: F401
    NEVER_US,
    Admission,
    AdmissionDecision,
    Autoscaler,
    BatchDrop,
    BatchEntry,
    BatchKind,
    BatchPlan,
    Batcher,
    ClusterView,
    Config,
    Error,
    Health,
    KvCapacity,
    Lifecycle,
    PoolSample,
    Request,
    RouteDecision,
    Router,
    ScaleDecision,
    Scorer,
    Sequence,
    Trace,
    ViewUse,
    WorkerState,
    WorkerView,
    config_from_dict,
    load_config,
    policy_names,
    read_trace,
    register_admission,
    register_autoscaler,
    register_batcher,
    register_router,
    register_scorer,
    synthetic_trace,
)
from .runs import Result, calibrate, infer_batch, profile, run, simulate, submit_batch  # noqa: F401
from .sweep import sweep  # noqa: F401
from .traces import trace_from_dataframe  # noqa: F401

__all__ = [name for name in dir() if not name.startswith("_")]
