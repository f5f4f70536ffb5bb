"""The README's Python examples run as written (in order, sharing one namespace)."""
import os
import re

import pytest

README = os.path.join(os.path.dirname(__file__), os.pardir, "README.md")


def _examples():
    with open(README) as f:
        return re.findall(r"```python\n(.*?)```", f.read(), re.S)


def test_readme_has_examples():
    assert len(_examples()) >= 3


def test_readme_examples_run(tmp_path, monkeypatch):
    pytest.importorskip("sklearn")
    monkeypatch.chdir(tmp_path)    # the search example writes its results file here
    namespace = {"__name__": "__main__"}
    for code in _examples():
        exec(compile(code, README, "exec"), namespace)
