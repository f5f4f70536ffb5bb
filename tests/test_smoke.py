import subprocess
import sys

import fastdnn


def test_import_compiles_nothing():
    assert fastdnn.__version__


def test_demo_runs_and_learns():
    out = subprocess.run([sys.executable, "-m", "fastdnn", "demo", "--epochs", "3"],
                         capture_output=True, text=True, check=True).stdout
    acc = float(out.split("test accuracy")[1].split()[0])
    assert acc > 0.85, out
