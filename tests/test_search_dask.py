"""A Dask distributed cluster on loopback runs a search through Client.get_executor()."""
import pytest

from fastdnn.search import LogUniform, random_search

distributed = pytest.importorskip("dask.distributed")


def trial(params):
    return {"dev_accuracy": -abs(params["x"] - 0.1)}


def test_search_on_a_local_dask_cluster(tmp_path):
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", dashboard_address=None)
    try:
        with distributed.Client(cluster) as client:
            res = random_search(trial, {"x": LogUniform(1e-3, 1)}, n_trials=6, seed=0,
                                executor=client.get_executor(),
                                results_file=str(tmp_path / "dask.csv"))
    finally:
        cluster.close()
    ref = random_search(trial, {"x": LogUniform(1e-3, 1)}, n_trials=6, seed=0,
                        executor="serial")
    assert res.column("x") == ref.column("x")
    assert res.column("dev_accuracy") == ref.column("dev_accuracy")
    assert all(r["status"] == "ok" for r in res)
