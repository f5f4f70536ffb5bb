"""The pure-NumPy reference: the oracle every fast kernel is tested against.

Batch-first: X is (m, n_in), W is (n_out, n_in), b is (n_out,). float32 and float64.
"""
from .activations import ACTIVATIONS, DERIVATIVES, activation_backward, activation_forward
from .augment import augment_rows
from .averages import ewa
from .batchnorm import (batchnorm_activation_backward, batchnorm_activation_forward,
                        batchnorm_backward, batchnorm_forward)
from .dense import dense_backward, dense_forward
from .dropout import dropout_backward, dropout_forward, dropout_mask
from .init import INITIALIZERS, initialize_weights
from .losses import (l2_cost, l2_grad, log_softmax, mean_squared_error, one_hot,
                     poisson_deviance, sigmoid, sigmoid_cross_entropy, softmax,
                     softmax_cross_entropy)
from .optim import (adam_update, adamw_update, momentum_update, nesterov_update,
                    rmsprop_update, sgd_update)
from . import schedules
