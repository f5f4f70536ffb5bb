"""numba-cuda kernels: the functions of fastdnn.reference, on an NVIDIA GPU.

Same names, signatures and return tuples as fastdnn.reference. Arrays may be NumPy
arrays (copied to the device, results returned as NumPy arrays: handy in tests) or
device arrays (numba, CuPy, anything with ``__cuda_array_interface__``; results stay on
the device as numba device arrays). Matrix products go to cuBLAS through CuPy; the
kernels fuse what surrounds them. Importing compiles nothing; kernels compile at their
first launch. Host-side helpers with no GPU work (initialisers, schedules, ewa,
one_hot) are the reference's own. ``ENGINE`` (fastdnn.cuda.engine) keeps a model's
parameters, gradients, optimizer state, workspaces and training data on the device.
"""
try:
    from numba import cuda as _cuda  # noqa: F401
except Exception as exc:  # pragma: no cover - depends on the machine
    raise ImportError(
        "fastdnn.cuda needs numba-cuda (and CuPy for cuBLAS): pip install 'fastdnn[cuda]'"
    ) from exc

import warnings as _warnings

# Small layers launch small grids by design (a 10-wide output layer, a bias vector):
# numba-cuda's low-occupancy warning would fire on most training steps.
_warnings.filterwarnings("ignore", message=r"Grid size \d+ will likely result in GPU "
                         r"under-utilization")

from ..reference import (ACTIVATIONS, DERIVATIVES, INITIALIZERS, ewa,  # noqa: F401
                         initialize_weights, one_hot, schedules)
from .activations import (activation_backward, activation_forward, dropout_backward,
                          dropout_forward, dropout_mask, dropout_mask_device)
from .batchnorm import (batchnorm_activation_backward, batchnorm_activation_forward,
                        batchnorm_backward, batchnorm_forward)
from .dense import dense_backward, dense_forward
from .losses import (l2_cost, l2_grad, log_softmax, mean_squared_error,
                     mean_squared_error_on_device, poisson_deviance,
                     poisson_deviance_on_device, sigmoid, sigmoid_cross_entropy,
                     sigmoid_cross_entropy_on_device, softmax, softmax_cross_entropy,
                     softmax_cross_entropy_on_device)
from .optim import (adam_update, adamw_update, momentum_update, nesterov_update,
                    rmsprop_update, sgd_update)
from ._device import is_device_array, to_device, to_host, zeros_like  # noqa: F401
from .engine import ENGINE  # noqa: F401  (the model engine's device arrays)
