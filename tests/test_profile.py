"""Smoke tests of `fastdnn profile` at tiny sizes: every section runs and reports sane numbers."""
import json

import pytest

from fastdnn import cli, profile

TINY = ["--stream-size", "20000", "--params", "5000", "--layers", "12,7,5,3", "--batch", "6",
        "--repeat", "1", "--min-time", "0", "--settle", "0", "--backend", "numpy",
        "--optimizers", "sgd,adam"]


def test_profile_json_has_every_section(capsys):
    assert profile.main(TINY + ["--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) >= {"environment", "settings", "bandwidth", "gemm", "optim", "step"}
    assert {r["gemm"] for r in result["gemm"]} == {
        "L1 fwd X@W.T", "L1 dW dZ.T@X", "L2 fwd X@W.T", "L2 dW dZ.T@X", "L2 dX dZ@W",
        "L3 fwd X@W.T", "L3 dW dZ.T@X", "L3 dX dZ@W"}  # 3L - 1 products, no input gradient
    assert result["gemm"][0]["flops"] == 2 * 6 * 12 * 7
    for op, bytes_per in (("copy", 8), ("triad", 12)):
        assert result["bandwidth"][op]["bytes_per_element"] == bytes_per
        assert result["bandwidth"][op]["GBps"] > 0
    adam = [r for r in result["optim"] if r["optimizer"] == "adam"]
    assert adam[0]["impl"] == "numpy reference" and adam[0]["bytes_per_param"] == 28
    assert [r["bytes_per_param"] for r in result["optim"] if r["optimizer"] == "sgd"][0] == 12
    step = {r["impl"]: r for r in result["step"]}["numpy reference"]
    assert step["ms"] > 0 and step["vs_numpy"] == 1.0
    assert step["gemm_ms"] + step["other_ms"] == pytest.approx(step["ms"], rel=1e-6) \
        or step["other_ms"] == 0.0


def test_profile_subcommand_prints_tables(capsys, tmp_path):
    path = tmp_path / "profile.json"
    assert cli.main(["profile", *TINY, "--sections", "gemm,optim", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "matrix products of one training step" in out
    assert "optimizer updates: 5,000 parameters" in out
    assert "## training step" not in out
    saved = json.loads(path.read_text())
    assert "step" not in saved and "gemm" in saved


def test_optimizer_tensors_section_on_cpu(capsys):
    argv = [a if a != "numpy" else "cpu" for a in TINY]
    assert cli.main(["profile", *argv, "--sections", "optim", "--tensors"]) == 0
    out = capsys.readouterr().out
    assert ("the tensors of layers 12-7-5-3 as lists (6 tensors, 149 parameters; fastdnn "
            "rows: opt.step(params, grads))") in out
    assert "fastdnn cpu" in out


@pytest.mark.parametrize("argv, name", [(["--layers", "784"], "--layers"),
                                        (["--sections", "gpu"], "--sections"),
                                        (["--optimizers", "lion"], "--optimizers")])
def test_bad_arguments_name_the_option(argv, name, capsys):
    with pytest.raises(SystemExit):
        profile.main(argv)
    assert name in capsys.readouterr().err


def test_plot_without_matplotlib_is_a_clear_error(capsys, tmp_path, monkeypatch):
    import builtins
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError("no matplotlib")
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", fake_import)
    assert profile.main(TINY + ["--plot", str(tmp_path / "p.png")]) == 2
    assert "matplotlib" in capsys.readouterr().err
