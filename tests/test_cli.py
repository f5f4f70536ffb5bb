"""The fastdnn command line."""
import pytest

from fastdnn.cli import main


def test_demo_runs_on_numpy(capsys):
    assert main(["demo", "--epochs", "2", "--backend", "numpy", "--no-compare"]) == 0
    out = capsys.readouterr().out
    assert "train /" in out and "ms/epoch on numpy" in out
    assert float(out.split("test accuracy")[1].split()[0]) > 0.8


@pytest.mark.parametrize("argv", [["demo", "--epochs", "-1"], ["demo", "--batch-size", "0"],
                                  ["demo", "--backend", "tpu"], ["frobnicate"]])
def test_bad_arguments(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
