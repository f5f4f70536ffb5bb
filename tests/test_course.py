"""fastdnn.course against the course's own formulas and the numbers its notebooks print.

The oracle below restates the NumPy code of the deeplearning.ai course 2 notebooks
(3-layer helpers written out layer by layer, as the notebooks do), and the expected numbers
are those printed by the notebooks and their public tests. Column layout: X (n_x, m).
"""
import functools
import math

import numpy as np
import pytest

from fastdnn import backend, course

from helpers import assert_close

close = functools.partial(assert_close, rtol=1e-12, atol=1e-14, dtype=np.float64)


# ----------------------------------------------------------------------------- the oracle

def o_relu(x):
    return np.maximum(0, x)


def o_sigmoid(x):
    return 1 / (1 + np.exp(-x))


def o_forward(X, parameters):
    W1, b1 = parameters["W1"], parameters["b1"]
    W2, b2 = parameters["W2"], parameters["b2"]
    W3, b3 = parameters["W3"], parameters["b3"]
    Z1 = np.dot(W1, X) + b1
    A1 = o_relu(Z1)
    Z2 = np.dot(W2, A1) + b2
    A2 = o_relu(Z2)
    Z3 = np.dot(W3, A2) + b3
    A3 = o_sigmoid(Z3)
    return A3, (Z1, A1, W1, b1, Z2, A2, W2, b2, Z3, A3, W3, b3)


def o_backward(X, Y, cache, lambd=0.0):
    m = X.shape[1]
    (Z1, A1, W1, b1, Z2, A2, W2, b2, Z3, A3, W3, b3) = cache
    dZ3 = A3 - Y
    dW3 = 1. / m * np.dot(dZ3, A2.T) + lambd / m * W3
    db3 = 1. / m * np.sum(dZ3, axis=1, keepdims=True)
    dA2 = np.dot(W3.T, dZ3)
    dZ2 = np.multiply(dA2, np.int64(A2 > 0))
    dW2 = 1. / m * np.dot(dZ2, A1.T) + lambd / m * W2
    db2 = 1. / m * np.sum(dZ2, axis=1, keepdims=True)
    dA1 = np.dot(W2.T, dZ2)
    dZ1 = np.multiply(dA1, np.int64(A1 > 0))
    dW1 = 1. / m * np.dot(dZ1, X.T) + lambd / m * W1
    db1 = 1. / m * np.sum(dZ1, axis=1, keepdims=True)
    return {"dZ3": dZ3, "dW3": dW3, "db3": db3, "dA2": dA2, "dZ2": dZ2, "dW2": dW2,
            "db2": db2, "dA1": dA1, "dZ1": dZ1, "dW1": dW1, "db1": db1}


def o_forward_dropout(X, parameters, keep_prob):
    np.random.seed(1)
    W1, b1 = parameters["W1"], parameters["b1"]
    W2, b2 = parameters["W2"], parameters["b2"]
    W3, b3 = parameters["W3"], parameters["b3"]
    Z1 = np.dot(W1, X) + b1
    A1 = o_relu(Z1)
    D1 = (np.random.rand(A1.shape[0], A1.shape[1]) < keep_prob).astype(int)
    A1 = A1 * D1 / keep_prob
    Z2 = np.dot(W2, A1) + b2
    A2 = o_relu(Z2)
    D2 = (np.random.rand(A2.shape[0], A2.shape[1]) < keep_prob).astype(int)
    A2 = A2 * D2 / keep_prob
    Z3 = np.dot(W3, A2) + b3
    A3 = o_sigmoid(Z3)
    return A3, (Z1, D1, A1, W1, b1, Z2, D2, A2, W2, b2, Z3, A3, W3, b3)


def o_backward_dropout(X, Y, cache, keep_prob):
    m = X.shape[1]
    (Z1, D1, A1, W1, b1, Z2, D2, A2, W2, b2, Z3, A3, W3, b3) = cache
    dZ3 = A3 - Y
    dW3 = 1. / m * np.dot(dZ3, A2.T)
    db3 = 1. / m * np.sum(dZ3, axis=1, keepdims=True)
    dA2 = np.dot(W3.T, dZ3) * D2 / keep_prob
    dZ2 = np.multiply(dA2, np.int64(A2 > 0))
    dW2 = 1. / m * np.dot(dZ2, A1.T)
    db2 = 1. / m * np.sum(dZ2, axis=1, keepdims=True)
    dA1 = np.dot(W2.T, dZ2) * D1 / keep_prob
    dZ1 = np.multiply(dA1, np.int64(A1 > 0))
    dW1 = 1. / m * np.dot(dZ1, X.T)
    db1 = 1. / m * np.sum(dZ1, axis=1, keepdims=True)
    return {"dZ3": dZ3, "dW3": dW3, "db3": db3, "dA2": dA2, "dZ2": dZ2, "dW2": dW2,
            "db2": db2, "dA1": dA1, "dZ1": dZ1, "dW1": dW1, "db1": db1}


def o_cost(A3, Y):
    m = Y.shape[1]
    return 1. / m * np.nansum(np.multiply(-np.log(A3), Y) + np.multiply(-np.log(1 - A3), 1 - Y))


def o_adam(parameters, grads, v, s, t, lr, beta1, beta2, eps):
    """The optimization notebook's Adam; returns new dicts."""
    parameters, v, s = dict(parameters), dict(v), dict(s)
    vc, sc = {}, {}
    for l in range(1, len(parameters) // 2 + 1):
        for name in ("W", "b"):
            d = "d" + name + str(l)
            v[d] = beta1 * v[d] + (1 - beta1) * grads[d]
            vc[d] = v[d] / (1 - np.power(beta1, t))
            s[d] = beta2 * s[d] + (1 - beta2) * np.power(grads[d], 2)
            sc[d] = s[d] / (1 - np.power(beta2, t))
            parameters[name + str(l)] = (parameters[name + str(l)]
                                         - lr * vc[d] / (np.sqrt(sc[d]) + eps))
    return parameters, v, s, vc, sc


def o_momentum(parameters, grads, v, beta, lr):
    parameters, v = dict(parameters), dict(v)
    for l in range(1, len(parameters) // 2 + 1):
        for name in ("W", "b"):
            d = "d" + name + str(l)
            v[d] = beta * v[d] + (1 - beta) * grads[d]
            parameters[name + str(l)] = parameters[name + str(l)] - lr * v[d]
    return parameters, v


def o_gd(parameters, grads, lr):
    parameters = dict(parameters)
    for l in range(1, len(parameters) // 2 + 1):
        for name in ("W", "b"):
            parameters[name + str(l)] = parameters[name + str(l)] - lr * grads["d" + name + str(l)]
    return parameters


def o_mini_batches(X, Y, size, seed):
    np.random.seed(seed)
    m = X.shape[1]
    permutation = list(np.random.permutation(m))
    sX, sY = X[:, permutation], Y[:, permutation].reshape((1, m))
    batches = [(sX[:, k * size:(k + 1) * size], sY[:, k * size:(k + 1) * size])
               for k in range(math.floor(m / size))]
    if m % size:
        batches.append((sX[:, (m // size) * size:], sY[:, (m // size) * size:]))
    return batches


def o_model(X, Y, layers_dims, optimizer, learning_rate, mini_batch_size, beta, beta1, beta2,
            epsilon, num_epochs, decay=None, decay_rate=1):
    """The optimization notebook's model with opt_utils' 3-layer helpers, written out."""
    np.random.seed(3)
    p = {}
    for l in range(1, len(layers_dims)):
        p["W" + str(l)] = (np.random.randn(layers_dims[l], layers_dims[l - 1])
                           * np.sqrt(2 / layers_dims[l - 1]))
        p["b" + str(l)] = np.zeros((layers_dims[l], 1))
    v = {k: np.zeros_like(p[k[1:]]) for k in ("dW1", "db1", "dW2", "db2", "dW3", "db3")}
    s = {k: np.zeros_like(a) for k, a in v.items()}
    t, seed, lr0, costs = 0, 10, learning_rate, []
    for i in range(num_epochs):
        seed += 1
        total = 0
        for bX, bY in o_mini_batches(X, Y, mini_batch_size, seed):
            m = bX.shape[1]
            a3, (z1, a1, W1, b1, z2, a2, W2, b2, z3, a3, W3, b3) = o_forward(bX, p)
            total += np.sum(np.multiply(-np.log(a3), bY) + np.multiply(-np.log(1 - a3), 1 - bY))
            dz3 = 1. / m * (a3 - bY)
            dW3, db3 = np.dot(dz3, a2.T), np.sum(dz3, axis=1, keepdims=True)
            dz2 = np.multiply(np.dot(W3.T, dz3), np.int64(a2 > 0))
            dW2, db2 = np.dot(dz2, a1.T), np.sum(dz2, axis=1, keepdims=True)
            dz1 = np.multiply(np.dot(W2.T, dz2), np.int64(a1 > 0))
            dW1, db1 = np.dot(dz1, bX.T), np.sum(dz1, axis=1, keepdims=True)
            g = {"dW1": dW1, "db1": db1, "dW2": dW2, "db2": db2, "dW3": dW3, "db3": db3}
            if optimizer == "gd":
                p = o_gd(p, g, learning_rate)
            elif optimizer == "momentum":
                p, v = o_momentum(p, g, v, beta, learning_rate)
            else:
                t += 1
                p, v, s, _, _ = o_adam(p, g, v, s, t, learning_rate, beta1, beta2, epsilon)
        costs.append(total / X.shape[1])
        if decay:
            learning_rate = decay(lr0, i, decay_rate)
    return p, costs


# ----------------------------------------------------------------------------- fixtures

@pytest.fixture(autouse=True)
def fast_kernels_for_all_sizes(monkeypatch):
    """Route even the tiny test arrays through the fast kernels (by default arrays under
    course.SMALL_ARRAY elements use the NumPy reference)."""
    monkeypatch.setattr(course, "SMALL_ARRAY", 0)


def three_layer(n_x=4, widths=(5, 3), m=7, seed=0):
    rng = np.random.default_rng(seed)
    dims = (n_x,) + tuple(widths) + (1,)
    p = {}
    for l in range(1, 4):
        p["W" + str(l)] = rng.standard_normal((dims[l], dims[l - 1]))
        p["b" + str(l)] = rng.standard_normal((dims[l], 1)) * 0.1
    X = rng.standard_normal((n_x, m))
    Y = (rng.random((1, m)) < 0.5).astype(float)
    return X, Y, p


def seed1_case():
    """The optimization notebook's update test case: seed 1; W1 (2, 3), b1, W2 (3, 3), b2,
    then their gradients."""
    np.random.seed(1)
    W1, b1 = np.random.randn(2, 3), np.random.randn(2, 1)
    W2, b2 = np.random.randn(3, 3), np.random.randn(3, 1)
    dW1, db1 = np.random.randn(2, 3), np.random.randn(2, 1)
    dW2, db2 = np.random.randn(3, 3), np.random.randn(3, 1)
    return ({"W1": W1, "b1": b1, "W2": W2, "b2": b2},
            {"dW1": dW1, "db1": db1, "dW2": dW2, "db2": db2})


def copy_dict(d):
    return {k: np.array(a, copy=True) for k, a in d.items()}


def assert_dicts_close(actual, expected, keys=None):
    for key in keys or expected:
        close(actual[key], expected[key], name=key)


# ----------------------------------------------------------------------------- initialization

def test_initializers_match_the_course_draws():
    for dims in ([2, 4, 1], [3, 1, 2], [5, 7, 3, 1]):
        zeros = course.initialize_parameters_zeros(dims)
        random = course.initialize_parameters_random(dims)
        he = course.initialize_parameters_he(dims)
        for l in range(1, len(dims)):
            assert zeros["W" + str(l)].shape == (dims[l], dims[l - 1])
            assert not zeros["W" + str(l)].any() and not zeros["b" + str(l)].any()
            assert he["b" + str(l)].shape == (dims[l], 1) and not he["b" + str(l)].any()
            assert he["W" + str(l)].dtype == np.float64
        np.random.seed(3)
        for l in range(1, len(dims)):
            close(random["W" + str(l)], np.random.randn(dims[l], dims[l - 1]) * 10)
        np.random.seed(3)
        for l in range(1, len(dims)):
            close(he["W" + str(l)],
                  np.random.randn(dims[l], dims[l - 1]) * np.sqrt(2. / dims[l - 1]))


def test_initializers_printed_values():
    he = course.initialize_parameters_he([2, 4, 1])
    assert_close(he["W1"], [[1.78862847, 0.43650985], [0.09649747, -1.8634927],
                            [-0.2773882, -0.35475898], [-0.08274148, -0.62700068]],
                 atol=1e-8, rtol=0)
    assert_close(he["W2"], [[-0.03098412, -0.33744411, -0.92904268, 0.62552248]], atol=1e-8, rtol=0)
    he = course.initialize_parameters_he([3, 1, 2])
    assert_close(he["W1"], [[1.46040903, 0.3564088, 0.07878985]], atol=1e-8, rtol=0)
    assert_close(he["W2"], [[-2.63537665], [-0.39228616]], atol=1e-8, rtol=0)
    random = course.initialize_parameters_random([3, 2, 1])
    assert_close(random["W1"], [[17.88628473, 4.36509851, 0.96497468],
                                [-18.63492703, -2.77388203, -3.54758979]], atol=1e-7, rtol=0)
    assert_close(random["W2"], [[-0.82741481, -6.27000677]], atol=1e-7, rtol=0)


def test_initializers_reject_bad_layers_dims():
    with pytest.raises(ValueError, match="layers_dims"):
        course.initialize_parameters_he([3])
    with pytest.raises(ValueError, match=r"layers_dims\[1\]"):
        course.initialize_parameters_he([3, 0, 1])


# ----------------------------------------------------------------------------- forward, backward

@pytest.mark.parametrize("m", [1, 3, 8])
def test_forward_backward_cost_match_oracle(m):
    X, Y, p = three_layer(m=m, seed=m)
    A3, cache = course.forward_propagation(X, p)
    oA3, ocache = o_forward(X, p)
    close(A3, oA3)
    assert len(cache) == 12
    for a, b in zip(cache, ocache):
        close(a, b)
    grads = course.backward_propagation(X, Y, cache)
    assert set(grads) == {"dZ3", "dW3", "db3", "dA2", "dZ2", "dW2", "db2", "dA1", "dZ1",
                          "dW1", "db1"}
    assert_dicts_close(grads, o_backward(X, Y, ocache))
    close(course.compute_cost(A3, Y), o_cost(oA3, Y))


def test_noncontiguous_input():
    X, Y, p = three_layer(m=6, seed=3)
    Xf = np.asfortranarray(X)
    Xs = np.repeat(X, 2, axis=1)[:, ::2]
    for Xn in (Xf, Xs):
        A3, cache = course.forward_propagation(Xn, p)
        oA3, ocache = o_forward(X, p)
        close(A3, oA3)
        assert_dicts_close(course.backward_propagation(Xn, Y, cache), o_backward(X, Y, ocache))


def test_predict(capsys):
    X, Y, p = three_layer(m=9, seed=4)
    pred = course.predict(X, Y, p)
    expected = (o_forward(X, p)[0] > 0.5).astype(int)
    np.testing.assert_array_equal(pred, expected)
    assert pred.shape == (1, 9)
    assert capsys.readouterr().out.startswith("Accuracy: ")
    np.testing.assert_array_equal(course.predict_dec(p, X), expected.astype(bool))


# ----------------------------------------------------------------------------- regularization

def reg_case():
    np.random.seed(1)
    X = np.random.randn(3, 5)
    p = {}
    for key, shape in (("W1", (2, 3)), ("b1", (2, 1)), ("W2", (3, 2)), ("b2", (3, 1)),
                       ("W3", (1, 3)), ("b3", (1, 1))):
        p[key] = np.random.randn(*shape)
    return X, np.array([[1, 1, 0, 1, 0]]), p


def test_cost_with_regularization():
    np.random.seed(1)
    Y = np.array([[1, 1, 0, 1, 0]])
    p = {}
    for key, shape in (("W1", (2, 3)), ("b1", (2, 1)), ("W2", (3, 2)), ("b2", (3, 1)),
                       ("W3", (1, 3)), ("b3", (1, 1))):
        p[key] = np.random.randn(*shape)
    A3 = np.array([[0.40682402, 0.01629284, 0.16722898, 0.10118111, 0.40682402]])
    cost = course.compute_cost_with_regularization(A3, Y, p, 0.1)
    assert cost == pytest.approx(1.7864859451590758, rel=1e-14)  # printed by the notebook
    m = Y.shape[1]
    expected = o_cost(A3, Y) + (1. / m) * (0.1 / 2) * (
        np.sum(np.square(p["W1"])) + np.sum(np.square(p["W2"])) + np.sum(np.square(p["W3"])))
    close(cost, expected)


def test_backward_with_regularization():
    X, Y, p = reg_case()
    _, cache = o_forward(X, p)
    grads = course.backward_propagation_with_regularization(X, Y, cache, 0.7)
    assert_dicts_close(grads, o_backward(X, Y, cache, lambd=0.7))
    # The notebook's test: a cache printed to 8 digits, and its expected gradients.
    np.random.seed(1)
    X = np.random.randn(3, 5)
    cache = (
        np.array([[-1.52855314, 3.32524635, 2.13994541, 2.60700654, -0.75942115],
                  [-1.98043538, 4.1600994, 0.79051021, 1.46493512, -0.45506242]]),
        np.array([[0., 3.32524635, 2.13994541, 2.60700654, 0.],
                  [0., 4.1600994, 0.79051021, 1.46493512, 0.]]),
        np.array([[-1.09989127, -0.17242821, -0.87785842], [0.04221375, 0.58281521, -1.10061918]]),
        np.array([[1.14472371], [0.90159072]]),
        np.array([[0.53035547, 5.94892323, 2.31780174, 3.16005701, 0.53035547],
                  [-0.69166075, -3.47645987, -2.25194702, -2.65416996, -0.69166075],
                  [-0.39675353, -4.62285846, -2.61101729, -3.22874921, -0.39675353]]),
        np.array([[0.53035547, 5.94892323, 2.31780174, 3.16005701, 0.53035547],
                  [0., 0., 0., 0., 0.], [0., 0., 0., 0., 0.]]),
        np.array([[0.50249434, 0.90085595], [-0.68372786, -0.12289023],
                  [-0.93576943, -0.26788808]]),
        np.array([[0.53035547], [-0.69166075], [-0.39675353]]),
        np.array([[-0.3771104, -4.10060224, -1.60539468, -2.18416951, -0.3771104]]),
        np.array([[0.40682402, 0.01629284, 0.16722898, 0.10118111, 0.40682402]]),
        np.array([[-0.6871727, -0.84520564, -0.67124613]]),
        np.array([[-0.0126646]]))
    grads = course.backward_propagation_with_regularization(X, Y, cache, 0.7)
    printed = {
        "dW3": [[-1.77691347, -0.11832879, -0.09397446]], "db3": [[-0.38032981]],
        "dW2": [[0.79276486, 0.85133918], [-0.0957219, -0.01720463], [-0.13100772, -0.03750433]],
        "db2": [[0.26135226], [0.], [0.]],
        "dW1": [[-0.25604646, 0.12298827, -0.28297129], [-0.17706303, 0.34536094, -0.4410571]],
        "db1": [[0.11845855], [0.21236874]],
        "dA1": [[0.2048239, 0.33967447, -0.05774423, 0.31036252, -0.14047649],
                [0.3672018, 0.60895764, -0.10352203, 0.5564081, -0.25184181]]}
    for key, value in printed.items():
        assert_close(grads[key], np.array(value), rtol=0, atol=1e-8, name=key)


# ----------------------------------------------------------------------------- dropout

def test_forward_dropout_printed_and_oracle():
    X, _, p = reg_case()
    A3, cache = course.forward_propagation_with_dropout(X, p, keep_prob=0.7)
    assert_close(A3, [[0.36974721, 0.00305176, 0.04565099, 0.49683389, 0.36974721]],
                 rtol=0, atol=1e-8)
    np.testing.assert_array_equal(cache[1], [[1, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    np.testing.assert_array_equal(cache[6], [[1, 1, 1, 0, 1], [1, 1, 1, 1, 1], [0, 0, 1, 1, 0]])
    oA3, ocache = o_forward_dropout(X, p, 0.7)
    close(A3, oA3)
    assert len(cache) == 14
    for a, b in zip(cache, ocache):
        close(a, b)


def test_forward_dropout_default_keep_prob_and_errors():
    X, _, p = reg_case()
    close(course.forward_propagation_with_dropout(X, p)[0], o_forward_dropout(X, p, 0.5)[0])
    with pytest.raises(ValueError, match="keep_prob"):
        course.forward_propagation_with_dropout(X, p, keep_prob=0.0)


def test_backward_dropout_printed_and_oracle():
    X, Y, p = reg_case()
    for keep_prob in (0.8, 0.5, 1.0):
        _, cache = o_forward_dropout(X, p, keep_prob)
        grads = course.backward_propagation_with_dropout(X, Y, cache, keep_prob)
        assert_dicts_close(grads, o_backward_dropout(X, Y, cache, keep_prob))
    # The notebook's test: its printed cache (boolean masks), keep_prob 0.8.
    cache = (
        np.array([[-1.52855314, 3.32524635, 2.13994541, 2.60700654, -0.75942115],
                  [-1.98043538, 4.1600994, 0.79051021, 1.46493512, -0.45506242]]),
        np.array([[True, False, True, True, True], [True, True, True, True, False]]),
        np.array([[0., 0., 4.27989081, 5.21401307, 0.],
                  [0., 8.32019881, 1.58102041, 2.92987024, 0.]]),
        np.array([[-1.09989127, -0.17242821, -0.87785842], [0.04221375, 0.58281521, -1.10061918]]),
        np.array([[1.14472371], [0.90159072]]),
        np.array([[0.53035547, 8.02565606, 4.10524802, 5.78975856, 0.53035547],
                  [-0.69166075, -1.71413186, -3.81223329, -4.61667916, -0.69166075],
                  [-0.39675353, -2.62563561, -4.82528105, -6.0607449, -0.39675353]]),
        np.array([[True, False, True, False, True], [False, True, False, True, True],
                  [False, False, True, False, False]]),
        np.array([[1.06071093, 0., 8.21049603, 0., 1.06071093], [0., 0., 0., 0., 0.],
                  [0., 0., 0., 0., 0.]]),
        np.array([[0.50249434, 0.90085595], [-0.68372786, -0.12289023],
                  [-0.93576943, -0.26788808]]),
        np.array([[0.53035547], [-0.69166075], [-0.39675353]]),
        np.array([[-0.7415562, -0.0126646, -5.65469333, -0.0126646, -0.7415562]]),
        np.array([[0.32266394, 0.49683389, 0.00348883, 0.49683389, 0.32266394]]),
        np.array([[-0.6871727, -0.84520564, -0.67124613]]),
        np.array([[-0.0126646]]))
    grads = course.backward_propagation_with_dropout(X, Y, cache, 0.8)
    printed = {
        "dW3": [[-0.06951191, 0., 0.]], "db3": [[-0.2715031]],
        "dA2": [[0.58180856, 0., -0.00299679, 0., -0.27715731],
                [0., 0.53159854, -0., 0.53159854, -0.34089673],
                [0., 0., -0.00292733, 0., -0.]],
        "dW2": [[-0.00256518, -0.0009476], [0., 0.], [0., 0.]], "db2": [[0.06033089], [0.], [0.]],
        "dA1": [[0.36544439, 0., -0.00188233, 0., -0.17408748],
                [0.65515713, 0., -0.00337459, 0., -0.]],
        "dW1": [[0.00019884, 0.00028657, 0.00012138], [0.00035647, 0.00051375, 0.00021761]],
        "db1": [[-0.00037647], [-0.00067492]]}
    for key, value in printed.items():
        assert_close(grads[key], np.array(value), rtol=0, atol=1e-8, name=key)


def test_bad_cache_is_named():
    X, Y, p = reg_case()
    _, cache = o_forward(X, p)
    with pytest.raises(ValueError, match="cache"):
        course.backward_propagation_with_dropout(X, Y, cache[:-1], 0.5)


# ----------------------------------------------------------------------------- gradient checking

def gc_case():
    np.random.seed(1)
    x = np.random.randn(4, 3)
    y = np.array([1, 1, 0])
    p = {}
    for key, shape in (("W1", (5, 4)), ("b1", (5, 1)), ("W2", (3, 5)), ("b2", (3, 1)),
                       ("W3", (1, 3)), ("b3", (1, 1))):
        p[key] = np.random.randn(*shape)
    return x, y, p


def test_vector_round_trip():
    _, _, p = gc_case()
    theta, keys = course.dictionary_to_vector(p)
    assert theta.shape == (47, 1)
    assert keys[:20] == ["W1"] * 20 and keys[20:25] == ["b1"] * 5 and keys[-1] == "b3"
    close(theta[:20, 0], p["W1"].ravel())
    back = course.vector_to_dictionary(theta)
    assert_dicts_close(back, p)
    grads = {"d" + k: a * 2 for k, a in p.items()}
    grads["dZ3"] = np.ones((1, 3))  # ignored, as in the course
    close(course.gradients_to_vector(grads), theta * 2)
    # other layer sizes
    p2 = course.initialize_parameters_he([3, 2, 4, 2, 1])
    theta2, _ = course.dictionary_to_vector(p2)
    assert_dicts_close(course.vector_to_dictionary(theta2, [3, 2, 4, 2, 1]), p2)
    with pytest.raises(ValueError, match="theta"):
        course.vector_to_dictionary(theta2)


def test_gradient_check_printed(capsys):
    x, y, p = gc_case()
    cost, cache = course.forward_propagation_n(x, y, p)
    A3, ocache = o_forward(x, p)
    close(cost, 1. / 3 * np.sum(np.multiply(-np.log(A3), y) + np.multiply(-np.log(1 - A3), 1 - y)))
    grads = course.backward_propagation_n(x, y, cache)
    assert_dicts_close(grads, o_backward(x, y, ocache))
    difference = course.gradient_check_n(p, grads, x, y, print_msg=True)
    assert difference < 2e-7
    assert difference == pytest.approx(1.1890913022840002e-07, rel=1e-3)
    assert "works perfectly fine" in capsys.readouterr().out
    # the notebook's planted errors: dW2 doubled, db1 times 4
    grads["dW2"] = grads["dW2"] * 2
    grads["db1"] = grads["db1"] * 4
    difference = course.gradient_check_n(p, grads, x, y, print_msg=True)
    assert difference == pytest.approx(0.2850931567761624, rel=1e-8)
    assert "There is a mistake" in capsys.readouterr().out
    assert course.gradient_check_n(p, grads, x, y) == pytest.approx(difference)
    assert capsys.readouterr().out == ""


def test_gradient_check_deeper_network_and_single_error():
    rng = np.random.default_rng(7)
    dims = [3, 4, 4, 2, 1]
    p = {}
    for l in range(1, len(dims)):
        p["W" + str(l)] = rng.standard_normal((dims[l], dims[l - 1]))
        p["b" + str(l)] = rng.standard_normal((dims[l], 1))
    X = rng.standard_normal((3, 5))
    Y = (rng.random((1, 5)) < 0.5).astype(float)
    _, cache = course.forward_propagation_n(X, Y, p)
    grads = course.backward_propagation_n(X, Y, cache)
    assert course.gradient_check_n(p, grads, X, Y) < 1e-6
    grads["db2"] = grads["db2"] + 0.05
    assert course.gradient_check_n(p, grads, X, Y) > 1e-3


# ----------------------------------------------------------------------------- optimizers

def test_gd_printed_oracle_and_semantics():
    p, g = seed1_case()
    original = copy_dict(p)
    w1_before = p["W1"]
    out = course.update_parameters_with_gd(p, g, 0.01)
    assert out is p
    assert_close(p["W1"], [[1.63535156, -0.62320365, -0.53718766],
                           [-1.07799357, 0.85639907, -2.29470142]],
                 rtol=0, atol=1e-8)
    assert_close(p["b2"], [[-0.88020257], [0.02561572], [0.57539477]], rtol=0, atol=1e-8)
    assert_dicts_close(p, o_gd(original, g, 0.01))
    close(w1_before, original["W1"])  # the caller's arrays are untouched, as in the course
    for k in p:
        assert type(p[k]) is np.ndarray and p[k].shape == original[k].shape


def test_momentum_printed_and_oracle():
    p, g = seed1_case()
    original = copy_dict(p)
    v = course.initialize_velocity(p)
    assert set(v) == {"dW1", "db1", "dW2", "db2"} and not any(a.any() for a in v.values())
    p2, v2 = course.update_parameters_with_momentum(p, g, v, 0.9, 0.01)
    assert p2 is p and v2 is v
    assert_close(p["W1"], [[1.62544598, -0.61290114, -0.52907334],
                           [-1.07347112, 0.86450677, -2.30085497]],
                 rtol=0, atol=1e-8)
    assert_close(v["db2"], [[0.02344157], [0.16598022], [0.07420442]], rtol=0, atol=1e-8)
    op, ov = o_momentum(original, g, course.initialize_velocity(original), 0.9, 0.01)
    assert_dicts_close(p, op)
    assert_dicts_close(v, ov)


def test_adam_printed_values():
    # notebook v1.1: t=2, learning_rate=0.02, beta1=0.8, beta2=0.888, epsilon=1e-2
    p, g = seed1_case()
    v, s = course.initialize_adam(p)
    p, v, s, vc, sc = course.update_parameters_with_adam(p, g, v, s, 2, 0.02, 0.8, 0.888, 1e-2)
    assert_close(p["W1"][0], [1.63942428, -0.6268425, -0.54320974], rtol=0, atol=1e-8)
    assert_close(p["W2"][0], [0.33356139, -0.26425199, 1.47707772], rtol=0, atol=1e-8)
    assert_close(p["b1"][0], [1.75854357], rtol=0, atol=1e-8)
    assert_close(p["b2"][0], [-0.89228024], rtol=0, atol=1e-8)
    assert_close(v["dW1"][0], [-0.22012384, 0.22894474, 0.18031814], rtol=0, atol=1e-8)
    assert_close(s["dW2"][0], [8.03757060e-03, 3.15030152e-02, 5.35801947e-02], rtol=0, atol=1e-9)
    assert_close(vc["dW1"][0], np.array([-0.22012384, 0.22894474, 0.18031814]) / (1 - 0.8**2),
                 rtol=1e-7, atol=0)
    assert_close(sc["db2"][0], np.array([0.00615448]) / (1 - 0.888**2), rtol=1e-6, atol=0)
    # earlier version: t=2 with the defaults 0.01, 0.9, 0.999, 1e-8
    p, g = seed1_case()
    v, s = course.initialize_adam(p)
    p, *_ = course.update_parameters_with_adam(p, g, v, s, 2)
    assert_close(p["W1"], [[1.63178673, -0.61919778, -0.53561312],
                           [-1.08040999, 0.85796626, -2.29409733]],
                 rtol=0, atol=1e-8)
    assert_close(p["b2"], [[-0.88529979], [0.03477238], [0.57537385]], rtol=0, atol=1e-8)


def test_adam_matches_oracle_over_steps():
    p, g = seed1_case()
    rng = np.random.default_rng(3)
    op = copy_dict(p)
    v, s = course.initialize_adam(p)
    ov, os_ = copy_dict(v), copy_dict(s)
    for t in range(1, 6):
        g = {k: rng.standard_normal(a.shape) for k, a in g.items()}
        g["db1"][0, 0] = 0.0  # a zero gradient: s stays tiny, epsilon matters
        p, v, s, vc, sc = course.update_parameters_with_adam(p, g, v, s, t, 0.05, 0.8, 0.9, 1e-8)
        op, ov, os_, ovc, osc = o_adam(op, g, ov, os_, t, 0.05, 0.8, 0.9, 1e-8)
        for mine, theirs in ((p, op), (v, ov), (s, os_), (vc, ovc), (sc, osc)):
            assert_dicts_close(mine, theirs)


def test_updates_keep_caller_arrays_unless_inplace():
    p, g = seed1_case()
    v, s = course.initialize_adam(p)
    arrays = {k: a for k, a in list(p.items()) + [("v" + k, a) for k, a in v.items()]}
    saved = {k: a.copy() for k, a in arrays.items()}
    course.update_parameters_with_adam(p, g, v, s, 1)
    for k, a in arrays.items():
        close(a, saved[k], name=k)
    p, g = seed1_case()
    v = course.initialize_velocity(p)
    ids = {k: id(a) for k, a in p.items()}
    expected, _ = o_momentum(copy_dict(p), g, copy_dict(v), 0.9, 0.1)
    course.update_parameters_with_momentum(p, g, v, 0.9, 0.1, inplace=True)
    assert {k: id(a) for k, a in p.items()} == ids
    assert_dicts_close(p, expected)


def test_updates_float32_and_awkward_inputs():
    p, g = seed1_case()
    p32 = {k: a.astype(np.float32) for k, a in p.items()}
    g32 = {k: a.astype(np.float32) for k, a in g.items()}
    out = course.update_parameters_with_gd(copy_dict(p32), g32, 0.1)
    assert all(a.dtype == np.float32 for a in out.values())
    assert_close(out["W2"], o_gd(p, g, 0.1)["W2"], dtype=np.float32)
    # non-contiguous gradients and read-only parameters
    p, g = seed1_case()
    expected = o_gd(copy_dict(p), g, 0.1)
    g_nc = {k: np.asfortranarray(a) for k, a in g.items()}
    for a in p.values():
        a.setflags(write=False)
    out = course.update_parameters_with_gd(p, g_nc, 0.1, inplace=True)
    assert_dicts_close(out, expected)
    # mismatched shape is named
    p, g = seed1_case()
    g["dW2"] = g["dW2"][:2]
    with pytest.raises(ValueError, match=r"grads\['dW2'\]"):
        course.update_parameters_with_gd(p, g, 0.1)
    p, g = seed1_case()
    del g["db1"]
    with pytest.raises(KeyError, match="db1"):
        course.update_parameters_with_gd(p, g, 0.1)


def test_numpy_fallback_when_cpu_missing(monkeypatch):
    real = backend.kernels

    def no_cpu(name="auto"):
        if name == "cpu":
            raise ImportError("No module named 'fastdnn.cpu'")
        return real(name)

    course._kernels.cache_clear()
    monkeypatch.setattr(backend, "kernels", no_cpu)
    try:
        assert course._kernels().__name__ == "fastdnn.reference"
        p, g = seed1_case()
        op = copy_dict(p)
        v, s = course.initialize_adam(p)
        p, v, s, _, _ = course.update_parameters_with_adam(p, g, v, s, 3, 0.01)
        expected = o_adam(op, g, *course.initialize_adam(op), 3, 0.01, 0.9, 0.999, 1e-8)[0]
        assert_dicts_close(p, expected)
    finally:
        course._kernels.cache_clear()


def test_small_arrays_use_the_reference(monkeypatch):
    monkeypatch.setattr(course, "SMALL_ARRAY", 4096)
    assert course._kernels_for(41).__name__ == "fastdnn.reference"
    assert course._kernels_for(4096) is course._kernels()
    # a large layer next to small ones: same numbers either way
    rng = np.random.default_rng(11)
    p = {"W1": rng.standard_normal((80, 64)), "b1": rng.standard_normal((80, 1)),
         "W2": rng.standard_normal((1, 80)), "b2": rng.standard_normal((1, 1))}
    g = {"d" + k: rng.standard_normal(a.shape) for k, a in p.items()}
    v, s = course.initialize_adam(p)
    expected = o_adam(p, g, v, s, 1, 0.01, 0.9, 0.999, 1e-8)
    got = course.update_parameters_with_adam(copy_dict(p), g, *course.initialize_adam(p), 1)
    for mine, theirs in zip(got, expected):
        assert_dicts_close(mine, theirs)


def test_kernels_prefer_cpu():
    try:
        import fastdnn.cpu  # noqa: F401
    except ImportError:
        pytest.skip("fastdnn.cpu is not available in this checkout")
    assert course._kernels().__name__ == "fastdnn.cpu"


# ----------------------------------------------------------------------------- mini-batches, decay

def test_random_mini_batches_printed_and_oracle():
    np.random.seed(1)
    X = np.random.randn(5, 7)
    Y = np.random.randn(1, 7) < 0.5
    batches = course.random_mini_batches(X, Y, 2)
    assert [b[0].shape[1] for b in batches] == [2, 2, 2, 1]
    assert_close(batches[0][0], [[1.74481176, -0.52817175], [-0.38405435, -0.24937038],
                                 [-1.10061918, -0.17242821], [-0.93576943, 0.50249434],
                                 [-0.67124613, -0.69166075]], rtol=0, atol=1e-8)
    np.testing.assert_array_equal(batches[3][1], [[False]])
    np.testing.assert_array_equal(batches[1][1], [[True, False]])
    for m, size, seed in ((7, 2, 0), (64, 16, 3), (10, 64, 5), (1, 1, 2)):
        X = np.arange(3.0 * m).reshape(3, m)
        Y = (np.arange(m) % 2).reshape(1, m)
        mine = course.random_mini_batches(X, Y, size, seed)
        theirs = o_mini_batches(X, Y, size, seed)
        assert len(mine) == len(theirs)
        for (a, b), (c, d) in zip(mine, theirs):
            np.testing.assert_array_equal(a, c)
            np.testing.assert_array_equal(b, d)


def test_learning_rate_decay_printed():
    assert course.update_lr(0.5, 2, 1) == pytest.approx(0.16666666666666666, rel=1e-15)
    assert course.update_lr(1, 2, 1) == pytest.approx(1 / 3)
    assert course.schedule_lr_decay(0.5, 100, 1, 100) == pytest.approx(0.25)
    assert course.schedule_lr_decay(0.5, 10, 1, 100) == pytest.approx(0.5)
    assert course.schedule_lr_decay(0.3, 1000, 0.25, 100) == pytest.approx(0.085714285, rel=1e-8)
    assert course.schedule_lr_decay(0.3, 100, 0.25, 100) == pytest.approx(0.24)
    assert course.schedule_lr_decay(0.5, 999, 1) == 0.5


# ----------------------------------------------------------------------------- model

def moons(m=90, seed=2):
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, np.pi, m)
    label = rng.random(m) < 0.5
    X = np.stack([np.cos(t) + label * 1.0, np.sin(t) * np.where(label, -1, 1) + label * 0.5])
    return X + 0.1 * rng.standard_normal(X.shape), label.reshape(1, m).astype(int)


@pytest.mark.parametrize("optimizer,decay", [("gd", None), ("momentum", None), ("adam", None),
                                             ("adam", "schedule")])
def test_model_matches_the_notebook_loop(optimizer, decay, capsys):
    X, Y = moons()
    dec = course.schedule_lr_decay if decay else None
    kw = dict(learning_rate=0.05, mini_batch_size=16, beta=0.9, beta1=0.9, beta2=0.999,
              epsilon=1e-8, num_epochs=4)
    params = course.model(X, Y, [2, 5, 3, 1], optimizer, print_cost=True, decay=dec,
                          decay_rate=0.5, **kw)
    expected, costs = o_model(X, Y, [2, 5, 3, 1], optimizer, decay=dec, decay_rate=0.5, **kw)
    assert_dicts_close(params, expected)
    out = capsys.readouterr().out
    assert out.startswith("Cost after epoch 0: %f" % costs[0])


def test_model_more_layers_learns():
    X, Y = moons(m=120, seed=5)
    params = course.model(X, Y, [2, 6, 4, 3, 1], "adam", learning_rate=0.02, num_epochs=60,
                          mini_batch_size=32, print_cost=False)
    assert set(params) == {"W1", "b1", "W2", "b2", "W3", "b3", "W4", "b4"}
    A, _ = course.forward_propagation(X, params)
    start = course.initialize_parameters_he([2, 6, 4, 3, 1])
    A0, _ = course.forward_propagation(X, start)
    assert course.compute_cost(A, Y) < 0.8 * course.compute_cost(A0, Y)
    for key, array in params.items():
        assert array.base is None, key  # independent arrays, not views of model's buffer
    with pytest.raises(ValueError, match="optimizer"):
        course.model(X, Y, [2, 3, 1], "sgd", num_epochs=1)
