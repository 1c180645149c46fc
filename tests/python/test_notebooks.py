"""Executes every notebook in notebooks/ headless and fails if any cell raises (each notebook ends
with assertions on what it shows).

Run from the repository root after a build:
    PYTHONPATH=build/python /usr/bin/python3 -m pytest tests/python/test_notebooks.py -v -s

- Kernel: a kernel spec written for this run that starts the interpreter running pytest
  (sys.executable, /usr/bin/python3 above), so the notebooks import the module built for it.
- PYTHONPATH: the folder of the twinfer package ($TWINFER_PYTHON_DIR, else the importable one's,
  else build/python) is prepended for the kernel, and TWINFER_BIN points at the same build's CLI.
- Working directory: notebooks/, as when Jupyter is opened there; the notebooks find the repository
  root by walking up (TWINFER_ROOT is set too).
- Outputs: figures, run folders and the executed notebooks go to pytest's temporary folder
  (TWINFER_NB_OUT); nothing is written into the sources.
- Timeout: each notebook has a wall-clock budget (NOTEBOOK_BUDGET_S) for all its cells together.
- The notebooks' optional inputs: TWINFER_CONV_TRACE (the Azure conversation trace; default
  ../shared/traces/azure_llm_2023/ next to the repository, else the bundled trace) and
  TWINFER_BIN pass through from the environment when set.
"""
import json
import os
import sys
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))


def find_python_dir():
    """The folder holding the twinfer package: $TWINFER_PYTHON_DIR, else where the importable one
    lives (CTest puts <build>/python on PYTHONPATH), else build/python."""
    if "TWINFER_PYTHON_DIR" in os.environ:
        return Path(os.environ["TWINFER_PYTHON_DIR"])
    try:
        import twinfer
    except ImportError:
        return ROOT / "build" / "python"
    return Path(twinfer.__file__).resolve().parents[1]


PYTHON_DIR = find_python_dir()
KERNEL_NAME = "twinfer-notebook-test"

# Wall-clock seconds for a whole notebook. 04 profiles the CPU backend (about a minute on 2 busy
# cores) and serves a trace for real.
NOTEBOOK_BUDGET_S = {"04_sim_vs_real": 360}
DEFAULT_BUDGET_S = 180


@pytest.fixture(scope="module")
def kernel_env(tmp_path_factory):
    if not (PYTHON_DIR / "twinfer").is_dir():
        pytest.skip(f"no twinfer module at {PYTHON_DIR}: build first "
                    "(cmake -S . -B build -G Ninja -DPython3_EXECUTABLE=/usr/bin/python3 && cmake --build build)")
    spec_root = tmp_path_factory.mktemp("jupyter")
    spec_dir = spec_root / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": f"Python ({sys.executable})", "language": "python"}
    (spec_dir / "kernel.json").write_text(json.dumps(spec))

    out = tmp_path_factory.mktemp("notebook_outputs")
    env = {
        "JUPYTER_PATH": os.pathsep.join(filter(None, [str(spec_root), os.environ.get("JUPYTER_PATH")])),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(PYTHON_DIR), os.environ.get("PYTHONPATH")])),
        "TWINFER_ROOT": str(ROOT),
        "TWINFER_NB_OUT": str(out),
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    }
    cli = PYTHON_DIR.parent / "bin" / "twinfer"  # the CLI of the same build, for 04's profiling
    if "TWINFER_BIN" not in os.environ and cli.is_file():
        env["TWINFER_BIN"] = str(cli)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel process inherits these
    yield out
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def test_notebooks_found():
    names = [p.stem for p in NOTEBOOKS]
    assert names == ["01_quickstart", "02_policy_tuning", "03_custom_policy", "04_sim_vs_real", "05_autoscaling"], names


def test_notebooks_committed_without_outputs():
    for path in NOTEBOOKS:
        nb = nbformat.read(str(path), as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, f"{path.name}: cell {cell.id} has outputs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, kernel_env):
    nb = nbformat.read(str(path), as_version=4)
    budget_s = NOTEBOOK_BUDGET_S.get(path.stem, DEFAULT_BUDGET_S)
    deadline = time.monotonic() + budget_s

    def remaining_s(cell):  # nbclient's per-cell timeout, drawn from the notebook's budget
        return max(1, int(deadline - time.monotonic()))

    client = nbclient.NotebookClient(nb, kernel_name=KERNEL_NAME, timeout_func=remaining_s,
                                     resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    start = time.monotonic()
    try:
        client.execute()
    finally:
        elapsed = time.monotonic() - start
        nbformat.write(nb, str(kernel_env / f"{path.stem}.executed.ipynb"))
        print(f"\n{path.stem}: {elapsed:.1f} s (budget {budget_s} s); executed copy in {kernel_env}")
    assert elapsed <= budget_s, f"{path.stem} took {elapsed:.0f} s, over its {budget_s} s budget"
