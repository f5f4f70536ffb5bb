"""The fastdnn.course notebook modules run their notebooks' cells and print the published numbers.

Each test runs cells of one deeplearning.ai course 2 notebook as the notebook writes them,
with the module imported in place of the notebook's helper file and its own definitions.
Expected values are those the notebooks print or their public tests assert; training runs
are cut to the first printed costs except one full run per notebook where it fits in a few
seconds. The Regularization notebook's data (data.mat) cannot be generated, so its training
cells are checked against a loop written out here instead of published costs.
"""
import re

import numpy as np
import pytest

from fastdnn.course import gradient_checking, initialization, optimization, regularization

from helpers import assert_close


def printed_costs(text, unit="iteration"):
    """{i: the printed text of the cost} from "Cost after <unit> i: <cost>" lines."""
    return {int(i): cost for i, cost in re.findall(rf"Cost after {unit} (\d+): (\S+)", text)}


def printed_accuracies(text):
    return [float(a) for a in re.findall(r"Accuracy: (\S+)", text)]


def assert_printed(actual, expected, rel):
    """Printed numbers (strings) against published ones, to a relative tolerance."""
    assert sorted(actual) == sorted(expected), (sorted(actual), sorted(expected))
    for key, value in expected.items():
        assert float(actual[key]) == pytest.approx(value, rel=rel, abs=0), (key, actual[key])


# ----------------------------------------------------------------------------- Initialization

def test_initialization_exercise_cells():
    parameters = initialization.initialize_parameters_zeros([3, 2, 1])
    assert {k: a.shape for k, a in parameters.items()} == {
        "W1": (2, 3), "b1": (2, 1), "W2": (1, 2), "b2": (1, 1)}
    assert not any(a.any() for a in parameters.values())
    parameters = initialization.initialize_parameters_random([3, 2, 1])
    assert_close(parameters["W1"], [[17.88628473, 4.36509851, 0.96497468],
                                    [-18.63492703, -2.77388203, -3.54758979]],
                 rtol=0, atol=1e-7)
    assert_close(parameters["W2"], [[-0.82741481, -6.27000677]], rtol=0, atol=1e-7)
    parameters = initialization.initialize_parameters_he([2, 4, 1])
    assert_close(parameters["W1"], [[1.78862847, 0.43650985], [0.09649747, -1.8634927],
                                    [-0.2773882, -0.35475898], [-0.08274148, -0.62700068]],
                 rtol=0, atol=1e-8)
    assert_close(parameters["W2"], [[-0.03098412, -0.33744411, -0.92904268, 0.62552248]],
                 rtol=0, atol=1e-8)


def test_initialization_zeros_and_random_training(capsys):
    train_X, train_Y, test_X, test_Y = initialization.load_dataset(plot=False)
    assert (train_X.shape, train_Y.shape, test_X.shape, test_Y.shape) == (
        (2, 300), (1, 300), (2, 100), (1, 100))
    # first two printed costs of the notebook's 15000 iterations
    parameters = initialization.model(train_X, train_Y, num_iterations=1001,
                                      initialization="zeros")
    print("On the train set:")
    initialization.predict(train_X, train_Y, parameters)
    print("On the test set:")
    initialization.predict(test_X, test_Y, parameters)
    out = capsys.readouterr().out
    assert printed_costs(out) == {0: "0.6931471805599453", 1000: "0.6931471805599453"}
    assert printed_accuracies(out) == [0.5, 0.5]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        initialization.model(train_X, train_Y, num_iterations=1001, initialization="random")
    costs = printed_costs(capsys.readouterr().out)
    assert costs[0] == "inf"
    # published runs print 0.6237..0.6251 here, as large weights amplify rounding differences
    assert float(costs[1000]) == pytest.approx(0.6247924745506072, rel=2e-3)


def test_initialization_he_training_full(capsys):
    train_X, train_Y, test_X, test_Y = initialization.load_dataset(plot=False)
    parameters = initialization.model(train_X, train_Y, initialization="he")
    print("On the train set:")
    initialization.predict(train_X, train_Y, parameters)
    print("On the test set:")
    initialization.predict(test_X, test_Y, parameters)
    out = capsys.readouterr().out
    published = [0.8830537463419761, 0.6879825919728063, 0.6751286264523371,
                 0.6526117768893807, 0.6082958970572938, 0.5304944491717495,
                 0.4138645817071794, 0.3117803464844441, 0.23696215330322562,
                 0.18597287209206836, 0.1501555628037182, 0.12325079292273548,
                 0.09917746546525937, 0.0845705595402428, 0.07357895962677366]
    # published copies of this run differ from one another in the last 2 digits
    assert_printed(printed_costs(out), dict(zip(range(0, 15000, 1000), published)), rel=1e-12)
    assert printed_accuracies(out) == [0.9933333333333333, 0.96]


def test_initialization_helpers_are_init_utils():
    np.random.seed(0)
    X, Y = np.random.randn(2, 6), (np.random.rand(1, 6) < 0.5).astype(int)
    parameters = initialization.initialize_parameters_he([2, 10, 5, 1])
    a3, cache = initialization.forward_propagation(X, parameters)
    grads = initialization.backward_propagation(X, Y, cache)
    assert set(grads) == {"dz3", "dW3", "db3", "da2", "dz2", "dW2", "db2", "da1", "dz1",
                          "dW1", "db1"}
    # init_utils takes the 1/m in dz3, so db3 is the plain sum of dz3
    assert_close(grads["dz3"], (a3 - Y) / 6, rtol=1e-15, atol=0)
    assert_close(grads["db3"], grads["dz3"].sum(keepdims=True), rtol=1e-15, atol=0)
    loss = -np.mean(Y * np.log(a3) + (1 - Y) * np.log(1 - a3))
    assert initialization.compute_loss(a3, Y) == pytest.approx(loss, rel=1e-14)
    assert_close(initialization.sigmoid(np.array([0.0, 2.0])), [0.5, 0.88079708],
                 rtol=0, atol=1e-8)
    assert_close(initialization.relu(np.array([-1.0, 3.0])), [0.0, 3.0], rtol=0, atol=0)
    with pytest.raises(ValueError, match="initialization"):
        initialization.model(X, Y, num_iterations=1, initialization="xavier")


def test_plot_decision_boundary_draws(monkeypatch):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    shown = []
    monkeypatch.setattr(plt, "show", lambda: shown.append(True))
    plt.figure()
    try:
        train_X, train_Y, _, _ = initialization.load_dataset()  # scatters, as the notebook
        assert plt.gca().collections[0].get_offsets().shape == (300, 2)
        parameters = initialization.initialize_parameters_he([2, 10, 5, 1])
        plt.figure()
        axes = plt.gca()
        initialization.plot_decision_boundary(
            lambda x: initialization.predict_dec(parameters, x.T), train_X, train_Y)
        assert shown == [True]
        assert (axes.get_xlabel(), axes.get_ylabel()) == ("x1", "x2")
        assert axes.collections[-1].get_offsets().shape == (300, 2)  # the examples
        assert len(axes.collections) == 2  # over the filled contour of the predictions
    finally:
        plt.close("all")


# ----------------------------------------------------------------------------- Regularization

def regularization_test_case(with_X=True):
    """The notebook's test inputs: seed 1, X (3, 5) (not for the cost's case), then W1, b1,
    W2, b2, W3, b3."""
    np.random.seed(1)
    X = np.random.randn(3, 5) if with_X else None
    parameters = {}
    for key, shape in (("W1", (2, 3)), ("b1", (2, 1)), ("W2", (3, 2)), ("b2", (3, 1)),
                       ("W3", (1, 3)), ("b3", (1, 1))):
        parameters[key] = np.random.randn(*shape)
    return X, np.array([[1, 1, 0, 1, 0]]), parameters


def test_regularization_exercise_cells():
    _, Y, parameters = regularization_test_case(with_X=False)
    A3 = np.array([[0.40682402, 0.01629284, 0.16722898, 0.10118111, 0.40682402]])
    cost = regularization.compute_cost_with_regularization(A3, Y, parameters, lambd=0.1)
    assert cost == pytest.approx(1.7864859451590758, rel=1e-14)
    X, Y, parameters = regularization_test_case()
    _, cache = regularization.forward_propagation(X, parameters)
    grads = regularization.backward_propagation_with_regularization(X, Y, cache, lambd=0.7)
    assert_close(grads["dW1"], [[-0.25604646, 0.12298827, -0.28297129],
                                [-0.17706303, 0.34536094, -0.4410571]], rtol=0, atol=1e-8)
    assert_close(grads["dW2"], [[0.79276486, 0.85133918], [-0.0957219, -0.01720463],
                                [-0.13100772, -0.03750433]], rtol=0, atol=1e-8)
    assert_close(grads["dW3"], [[-1.77691347, -0.11832879, -0.09397446]], rtol=0, atol=1e-8)
    A3, cache = regularization.forward_propagation_with_dropout(X, parameters, keep_prob=0.7)
    assert_close(A3, [[0.36974721, 0.00305176, 0.04565099, 0.49683389, 0.36974721]],
                 rtol=0, atol=1e-8)
    grads = regularization.backward_propagation_with_dropout(X, Y, cache, keep_prob=0.7)
    assert set(grads) == {"dZ3", "dW3", "db3", "dA2", "dZ2", "dW2", "db2", "dA1", "dZ1",
                          "dW1", "db1"}


def oracle_regularization_model(X, Y, num_iterations, learning_rate, lambd=0.0, keep_prob=1.0):
    """The notebook's model with reg_utils' helpers, written out for 3 layers."""
    m = X.shape[1]
    dims = [X.shape[0], 20, 3, 1]
    np.random.seed(3)
    W = {l: np.random.randn(dims[l], dims[l - 1]) / np.sqrt(dims[l - 1]) for l in (1, 2, 3)}
    b = {l: np.zeros((dims[l], 1)) for l in (1, 2, 3)}
    costs = []
    for _ in range(num_iterations):
        np.random.seed(1)
        A, D = {0: X}, {}
        for l in (1, 2):
            A[l] = np.maximum(0, W[l] @ A[l - 1] + b[l])
            if keep_prob < 1:
                D[l] = np.random.rand(*A[l].shape) < keep_prob
                A[l] = A[l] * D[l] / keep_prob
        A3 = 1 / (1 + np.exp(-(W[3] @ A[2] + b[3])))
        costs.append(-np.mean(Y * np.log(A3) + (1 - Y) * np.log(1 - A3))
                     + lambd / (2 * m) * sum(np.sum(W[l] ** 2) for l in W))
        dZ, grads = A3 - Y, {}
        for l in (3, 2, 1):
            grads[l] = (dZ @ A[l - 1].T / m + lambd / m * W[l], dZ.sum(1, keepdims=True) / m)
            if l > 1:
                dA = W[l].T @ dZ
                dA = dA * D[l - 1] / keep_prob if keep_prob < 1 else dA
                dZ = dA * (A[l - 1] > 0)
        for l, (dW, db) in grads.items():
            W[l], b[l] = W[l] - learning_rate * dW, b[l] - learning_rate * db
    parameters = {}
    for l in (1, 2, 3):
        parameters["W" + str(l)], parameters["b" + str(l)] = W[l], b[l]
    return parameters, costs


@pytest.fixture
def data_mat(tmp_path, monkeypatch):
    """A stand-in for the notebook's datasets/data.mat, below the working directory."""
    io = pytest.importorskip("scipy.io")
    rng = np.random.default_rng(5)
    X, Xval = rng.uniform(-0.7, 0.4, (211, 2)), rng.uniform(-0.7, 0.4, (200, 2))
    y = (X[:, :1] + 0.3 * rng.standard_normal((211, 1)) > -0.15).astype(np.uint8)
    yval = (Xval[:, :1] > -0.15).astype(np.uint8)
    (tmp_path / "datasets").mkdir()
    io.savemat(tmp_path / "datasets" / "data.mat", {"X": X, "y": y, "Xval": Xval, "yval": yval})
    monkeypatch.chdir(tmp_path)
    return X, y, Xval, yval


def test_regularization_training_cells(data_mat, capsys):
    train_X, train_Y, test_X, test_Y = regularization.load_2D_dataset(plot=False)
    assert (train_X.shape, train_Y.shape, test_X.shape, test_Y.shape) == (
        (2, 211), (1, 211), (2, 200), (1, 200))
    np.testing.assert_array_equal(train_X, data_mat[0].T)
    for kwargs in ({}, {"lambd": 0.7}, {"keep_prob": 0.86, "learning_rate": 0.3}):
        parameters = regularization.model(train_X, train_Y, num_iterations=25, **kwargs)
        oracle, costs = oracle_regularization_model(
            train_X, train_Y, 25, kwargs.get("learning_rate", 0.3), kwargs.get("lambd", 0.0),
            kwargs.get("keep_prob", 1.0))
        for key in oracle:
            assert_close(parameters[key], oracle[key], rtol=1e-10, atol=1e-13, name=key)
        assert_printed(printed_costs(capsys.readouterr().out), {0: costs[0]}, rel=1e-13)
    regularization.predict(test_X, test_Y, parameters)
    assert 0.5 < printed_accuracies(capsys.readouterr().out)[0] <= 1


def test_regularization_helpers_and_errors(tmp_path):
    parameters = regularization.initialize_parameters([2, 20, 3, 1])
    np.random.seed(3)
    for l, (rows, cols) in enumerate([(20, 2), (3, 20), (1, 3)], start=1):
        # bit for bit: reg_utils divides by the square root (He multiplies)
        np.testing.assert_array_equal(parameters["W" + str(l)],
                                      np.random.randn(rows, cols) / np.sqrt(cols))
        assert not parameters["b" + str(l)].any()
    with pytest.raises(FileNotFoundError, match="cannot be generated"):
        regularization.load_2D_dataset(tmp_path / "missing.mat")
    X, Y, _ = regularization_test_case()
    with pytest.raises(ValueError, match="lambd"):
        regularization.model(X, Y, num_iterations=1, lambd=0.7, keep_prob=0.8)
    with pytest.raises(ValueError, match="keep_prob"):
        regularization.model(X, Y, num_iterations=1, keep_prob=0)


# ----------------------------------------------------------------------------- Gradient Checking

def test_gradient_checking_1d_cells(capsys):
    assert gradient_checking.forward_propagation(2, 4) == 8
    assert gradient_checking.backward_propagation(3, 4) == 3
    difference = gradient_checking.gradient_check(3, 4, print_msg=True)
    assert abs(difference - 7.814075313343006e-11) < 1e-12  # the public test's tolerance
    assert ("Your backward propagation works perfectly fine! difference = 7.814075313343006e-11"
            in capsys.readouterr().out)
    # the earlier version of the notebook checked x=2, theta=4
    assert gradient_checking.gradient_check(2, 4) == pytest.approx(2.919335883291695e-10,
                                                                   rel=1e-6)
    assert capsys.readouterr().out == ""


def test_gradient_checking_nd_cells(capsys):
    np.random.seed(1)  # the notebook's gradient_check_n_test_case
    X, Y = np.random.randn(4, 3), np.array([1, 1, 0])
    parameters = {}
    for key, shape in (("W1", (5, 4)), ("b1", (5, 1)), ("W2", (3, 5)), ("b2", (3, 1)),
                       ("W3", (1, 3)), ("b3", (1, 1))):
        parameters[key] = np.random.randn(*shape)
    cost, cache = gradient_checking.forward_propagation_n(X, Y, parameters)
    gradients = gradient_checking.backward_propagation_n(X, Y, cache)
    difference = gradient_checking.gradient_check_n(parameters, gradients, X, Y, 1e-7, True)
    assert difference == pytest.approx(1.1890913024229996e-07, rel=1e-6)
    assert "works perfectly fine" in capsys.readouterr().out
    # the notebook's handed-out backward_propagation_n: dW2 doubled, db1 four times
    gradients["dW2"] = gradients["dW2"] * 2
    gradients["db1"] = gradients["db1"] * 4
    difference = gradient_checking.gradient_check_n(parameters, gradients, X, Y, 1e-7, True)
    assert difference == pytest.approx(0.2850931567761623, rel=1e-9)
    assert "There is a mistake in the backward propagation!" in capsys.readouterr().out
    theta, keys = gradient_checking.dictionary_to_vector(parameters)
    assert theta.shape == (47, 1) and keys[0] == "W1" and keys[-1] == "b3"
    back = gradient_checking.vector_to_dictionary(theta)
    np.testing.assert_array_equal(back["W2"], parameters["W2"])
    assert gradient_checking.gradients_to_vector(gradients).shape == (47, 1)


# ----------------------------------------------------------------------------- Optimization

def test_optimization_update_cells():
    W1, b1, W2, b2, dW1, db1, dW2, db2 = optimization.load_params_and_grads()
    parameters = {"W1": W1, "b1": b1, "W2": W2, "b2": b2}
    grads = {"dW1": dW1, "db1": db1, "dW2": dW2, "db2": db2}
    out = optimization.update_parameters_with_gd(dict(parameters), grads, 0.01)
    assert_close(out["W1"], [[1.63535156, -0.62320365, -0.53718766],
                             [-1.07799357, 0.85639907, -2.29470142]], rtol=0, atol=1e-8)
    assert_close(out["b1"], [[1.74604067], [-0.75184921]], rtol=0, atol=1e-8)
    assert_close(out["W2"], [[0.32171798, -0.25467393, 1.46902454],
                             [-2.05617317, -0.31554548, -0.3756023],
                             [1.1404819, -1.09976462, -0.1612551]], rtol=0, atol=1e-8)
    assert_close(out["b2"], [[-0.88020257], [0.02561572], [0.57539477]], rtol=0, atol=1e-8)

    v = optimization.initialize_velocity(parameters)
    out, v = optimization.update_parameters_with_momentum(dict(parameters), grads, v,
                                                          beta=0.9, learning_rate=0.01)
    assert_close(out["W1"], [[1.62544598, -0.61290114, -0.52907334],
                             [-1.07347112, 0.86450677, -2.30085497]], rtol=0, atol=1e-8)
    assert_close(out["b1"], [[1.74493465], [-0.76027113]], rtol=0, atol=1e-8)
    assert_close(out["b2"], [[-0.87809283], [0.04055394], [0.58207317]], rtol=0, atol=1e-8)
    assert_close(v["dW1"], [[-0.11006192, 0.11447237, 0.09015907],
                            [0.05024943, 0.09008559, -0.06837279]], rtol=0, atol=1e-8)
    assert_close(v["dW2"], [[-0.02678881, 0.05303555, -0.06916608],
                            [-0.03967535, -0.06871727, -0.08452056],
                            [-0.06712461, -0.00126646, -0.11173103]], rtol=0, atol=1e-8)

    v, s = optimization.initialize_adam(parameters)
    out, v, s, _, _ = optimization.update_parameters_with_adam(dict(parameters), grads, v, s,
                                                               t=2)
    assert_close(out["W1"], [[1.63178673, -0.61919778, -0.53561312],
                             [-1.08040999, 0.85796626, -2.29409733]], rtol=0, atol=1e-8)
    assert_close(out["b1"], [[1.75225313], [-0.75376553]], rtol=0, atol=1e-8)
    assert_close(out["W2"], [[0.32648046, -0.25681174, 1.46954931],
                             [-2.05269934, -0.31497584, -0.37661299],
                             [1.14121081, -1.09244991, -0.16498684]], rtol=0, atol=1e-8)
    assert_close(s["dW1"], [[0.00121136, 0.00131039, 0.00081287],
                            [0.0002525, 0.00081154, 0.00046748]], rtol=0, atol=1e-8)
    assert_close(s["db2"], [[5.49507194e-05], [2.75494327e-03], [5.50629536e-04]],
                 rtol=1e-7, atol=0)


def test_optimization_mini_batch_and_decay_cells():
    np.random.seed(1)  # the notebook's random_mini_batches_test_case
    X, Y = np.random.randn(12288, 148), np.random.randn(1, 148) < 0.5
    mini_batches = optimization.random_mini_batches(X, Y, 64)
    assert [b[0].shape for b in mini_batches] == [(12288, 64), (12288, 64), (12288, 20)]
    assert [b[1].shape for b in mini_batches] == [(1, 64), (1, 64), (1, 20)]
    assert_close(mini_batches[0][0][0][0:3], [0.90085595, -0.7612069, 0.2344157],
                 rtol=0, atol=1e-8)
    assert optimization.update_lr(0.5, 2, 1) == pytest.approx(0.16666666666666666, rel=1e-15)
    assert optimization.schedule_lr_decay(0.5, 10, 0.3, 100) == 0.5
    assert optimization.schedule_lr_decay(0.5, 100, 0.3, 100) == pytest.approx(
        0.3846153846153846, rel=1e-15)


# printed lines of the notebook's training cells (layers_dims [2, 5, 2, 1]), epochs 0 and 1000
SHORT_RUNS = [
    (dict(optimizer="gd"), ["0.702405", "0.668101"], None),
    (dict(beta=0.9, optimizer="momentum"), ["0.702413", "0.668167"], None),
    (dict(optimizer="gd", learning_rate=0.1, decay="update_lr"), ["0.701091", "0.661884"],
     ["0.100000", "0.000100"]),
    (dict(optimizer="gd", learning_rate=0.1, decay="schedule_lr_decay"),
     ["0.701091", "0.127161"], ["0.100000", "0.050000"]),
    (dict(optimizer="momentum", learning_rate=0.1, decay="schedule_lr_decay"),
     ["0.702226", "0.128974"], ["0.100000", "0.050000"]),
    (dict(optimizer="adam", learning_rate=0.01, decay="schedule_lr_decay"),
     ["0.699346", "0.130074"], ["0.010000", "0.005000"]),
]


@pytest.mark.parametrize("kwargs,costs,rates", SHORT_RUNS,
                         ids=["gd", "momentum", "gd-update_lr", "gd-schedule",
                              "momentum-schedule", "adam-schedule"])
def test_optimization_training_cells(kwargs, costs, rates, capsys):
    train_X, train_Y = optimization.load_dataset(plot=False)
    if "decay" in kwargs:
        kwargs = dict(kwargs, decay=getattr(optimization, kwargs["decay"]))
    optimization.model(train_X, train_Y, [train_X.shape[0], 5, 2, 1], num_epochs=1001, **kwargs)
    out = capsys.readouterr().out
    assert printed_costs(out, "epoch") == dict(zip([0, 1000], costs))
    if rates:
        assert re.findall(r"learning rate after epoch \d+: (\S+)", out) == rates


def test_optimization_adam_training_full(capsys):
    train_X, train_Y = optimization.load_dataset(plot=False)
    assert (train_X.shape, train_Y.shape) == ((2, 300), (1, 300))
    layers_dims = [train_X.shape[0], 5, 2, 1]
    parameters = optimization.model(train_X, train_Y, layers_dims, optimizer="adam")
    optimization.predict(train_X, train_Y, parameters)
    out = capsys.readouterr().out
    assert printed_costs(out, "epoch") == {0: "0.702166", 1000: "0.167845", 2000: "0.141316",
                                           3000: "0.138788", 4000: "0.136066"}
    assert round(printed_accuracies(out)[0], 2) == 0.94  # the notebook's table: 94%


def test_optimization_helpers_are_opt_utils():
    parameters = optimization.initialize_parameters([2, 5, 2, 1])
    he = initialization.initialize_parameters_he([2, 5, 2, 1])
    for key in he:
        np.testing.assert_array_equal(parameters[key], he[key])
    train_X, train_Y = optimization.load_dataset(plot=False)
    a3, cache = optimization.forward_propagation(train_X, parameters)
    # opt_utils_v1a sums the cross-entropy; the other helper files average it
    assert optimization.compute_cost(a3, train_Y) == pytest.approx(
        300 * initialization.compute_loss(a3, train_Y), rel=1e-13)
    assert optimization.compute_cost(a3, train_Y) == pytest.approx(
        300 * regularization.compute_cost(a3, train_Y), rel=1e-13)
    grads = optimization.backward_propagation(train_X, train_Y, cache)
    assert "dz3" in grads and "da2" in grads and "dZ3" not in grads


def test_star_imports_give_each_notebook_its_names():
    for module in (initialization, regularization, gradient_checking, optimization):
        namespace = {}
        exec(f"from {module.__name__} import *", namespace)
        assert set(module.__all__) <= set(namespace)
    assert initialization.model is not regularization.model is not optimization.model
    assert gradient_checking.forward_propagation(3.0, 2.0) == 6.0
