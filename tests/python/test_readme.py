"""The README's Python example, pasted line by line into the interactive interpreter as a user would."""
import code
import os
import re

from conftest import ROOT


def readme_python_blocks():
    with open(os.path.join(ROOT, "README.md")) as f:
        return re.findall(r"```python\n(.*?)```", f.read(), flags=re.S)


class PastedConsole(code.InteractiveConsole):
    """An interpreter console whose error output (syntax errors, tracebacks) is kept, not printed."""

    def __init__(self):
        super().__init__(locals={})
        self.errors = []

    def write(self, data):
        self.errors.append(data)


def test_the_readme_python_example_runs_when_pasted_into_the_interpreter(monkeypatch):
    blocks = readme_python_blocks()
    assert blocks, "README.md has no ```python block"
    monkeypatch.chdir(ROOT)  # its paths are relative to the repository
    console = PastedConsole()
    for block in blocks:
        for line in block.splitlines():
            console.push(line)
        console.push("")  # the blank line that ends a pasted compound statement
    assert console.errors == [], "".join(console.errors)
    df = console.locals["df"]
    assert len(df) == 6 and set(df["policies.router.name"]) == {"round_robin", "least_work", "shortest_queue"}
    assert (df["error"] == "").all(), df["error"].tolist()
