"""Fused Numba CPU kernels: the same functions and signatures as fastdnn.reference.

Batch-first: X is (m, n_in), W is (n_out, n_in), b is (n_out,). float32 and float64.
Hot paths (dense, batchnorm, dropout, losses, optimizers, activations) are parallel
Numba loops; the rest (initializers, schedules, averages, one_hot, l2_cost) is the
reference itself. Every reduction is order-fixed, so results do not depend on the
number of threads.

Threads: inside ``owned_threads()`` (where the models run their steps) NumPy's OpenBLAS
is held at one thread and every matrix product is split over Numba's threads from
compiled code (_blas), so products and kernels share one thread pool. Elsewhere, while
NumPy's OpenBLAS busy-waits after each GEMM (its default), the kernels run on the calling
thread only, which measured fastest on 2 cores; see _common.SPIN_GUARD.

Kernels compile with NumPy's error model (IEEE division without Python's zero checks, as
inside their prange loops anyway), which cut the compile time of the BatchNorm forward
kernel by about 15%; no kernel divides by a value that can be zero.
"""
from ..reference import INITIALIZERS, ewa, initialize_weights, schedules  # noqa: F401
from ._blas import owned_threads
from .activations import ACTIVATIONS, DERIVATIVES, activation_backward, activation_forward
from .batchnorm import (batchnorm_activation_backward, batchnorm_activation_forward,
                        batchnorm_backward, batchnorm_forward)
from .dense import dense_backward, dense_forward
from .dropout import dropout_backward, dropout_forward, dropout_mask
from .losses import (l2_cost, l2_grad, log_softmax, mean_squared_error, one_hot,
                     poisson_deviance, sigmoid, sigmoid_cross_entropy, softmax,
                     softmax_cross_entropy)
from .optim import (TensorLists, adam_update, adamw_update, momentum_update,
                    nesterov_update, rmsprop_update, sgd_update)
