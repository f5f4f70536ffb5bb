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


def test_the_speed_line_says_slower_when_it_is():
    from fastdnn.cli import speed_words
    assert speed_words(0.96) == "1.04x slower"
    assert speed_words(1.04) == "1.04x faster"
    assert speed_words(3.46) == "3.5x faster"
    assert speed_words(0.3) == "3.3x slower"


def test_a_busy_machine_is_reported():
    from fastdnn.cli import busy_note
    assert busy_note([[1.0, 1.0, 1.1, 1.0]], load=1.9, cores=2) == ""
    assert "load average 3.1 on 2 cores" in busy_note([[1.0] * 4], load=3.1, cores=2)
    assert "epoch times up to 3.0x" in busy_note([[1.0, 1.0, 3.0, 3.0, 1.0]], load=0,
                                                 cores=2)
    assert busy_note([[1.0, 1.0, 2.0, 1.0, 1.0]], load=0, cores=2) == ""   # one slow one
    # runs of other speeds (the fast backend, the reference) are judged on their own
    assert busy_note([[6.0] * 5, [21.0] * 5], load=0, cores=2) == ""
