"""``fastdnn search``: a config file runs a search on digits."""
import json
import sys

import pytest

from fastdnn.cli import main


def test_search_command_random_caviar(tmp_path, capsys):
    cfg = {"n_trials": 4, "workers": 1, "fixed": {"epochs": 1, "hidden_units": 8},
           "space": {"learning_rate": {"log_uniform": [1e-3, 1e-1]},
                     "beta1": {"one_minus_log_uniform": [0.8, 0.99]}}}
    path = tmp_path / "s.json"
    path.write_text(json.dumps(cfg))
    out_csv = tmp_path / "r.csv"
    assert main(["search", str(path), "--results", str(out_csv)]) == 0
    out = capsys.readouterr().out
    assert "4 trials (4 ok)" in out and "dev_accuracy" in out and out_csv.exists()


def test_search_command_coarse_to_fine(tmp_path, capsys):
    cfg = {"mode": "coarse_to_fine", "method": "mlp", "workers": 1,
           "fixed": {"epochs": 1, "hidden_units": 8, "backend": "numpy"},
           "space": {"learning_rate": {"log_uniform": [1e-3, 1e-1]}},
           "coarse_to_fine": {"rounds": 2, "trials_per_round": 2, "top_k": 1}}
    path = tmp_path / "s.json"
    path.write_text(json.dumps(cfg))
    assert main(["search", str(path)]) == 0
    assert "4 trials (4 ok)" in capsys.readouterr().out


@pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib")
def test_example_config_parses():
    from pathlib import Path

    from fastdnn.search import LogUniform, space_from_config
    from fastdnn.search.cli import load_config
    cfg = load_config(Path(__file__).parents[1] / "examples" / "search.toml")
    assert space_from_config(cfg["space"])["learning_rate"] == LogUniform(1e-4, 1e-1)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib")
def test_example_config_runs_as_the_readme_says(tmp_path, capsys):
    """examples/search.toml, as shipped but shorter: its keys (a [coarse_to_fine] table
    waiting beside mode = "random" among them) run a search."""
    from pathlib import Path
    text = (Path(__file__).parents[1] / "examples" / "search.toml").read_text()
    assert "n_trials = 40" in text and "epochs = 30" in text
    path = tmp_path / "search.toml"
    path.write_text(text.replace("n_trials = 40", "n_trials = 2")
                    .replace("epochs = 30", "epochs = 1"))
    assert main(["search", str(path), "--quiet"]) == 0
    assert "2 trials (2 ok)" in capsys.readouterr().out


def test_unknown_config_key(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"n_trial": 3}))
    with pytest.raises(SystemExit, match="unknown config keys"):
        main(["search", str(path)])
