"""Search plots (skipped without matplotlib)."""
import pytest

from fastdnn.search import Choice, LogUniform, OneMinusLogUniform, random_search

pytest.importorskip("matplotlib")


def test_plots_draw(tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    from fastdnn.search.plots import plot_curves, plot_scores

    def trial(p):
        return {"dev_accuracy": p["lr"], "history": {"val_accuracy": [0.1, p["lr"]],
                                                     "accuracy": [0.2, 0.3]}}
    space = {"lr": LogUniform(1e-3, 1), "beta1": OneMinusLogUniform(0.8, 0.99),
             "act": Choice(["relu", "tanh"])}
    res = random_search(trial, space, n_trials=5, executor="serial")
    plot_scores(res, space).savefig(tmp_path / "s.png")
    plot_curves(res, top=3).savefig(tmp_path / "c.png")
    assert (tmp_path / "s.png").exists() and (tmp_path / "c.png").exists()
