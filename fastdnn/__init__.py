"""fastdnn: train multilayer perceptrons on fused Numba kernels.

The public API is re-exported here; importing fastdnn compiles nothing.
"""
from . import reference
from .augment import Augment
from .backend import kernels, resolve as resolve_backend
from .callbacks import (CSVLogger, Callback, EarlyStopping, GradientMonitor, History,
                        ModelCheckpoint, ReduceLROnPlateau)
from .callbacks import LearningRateScheduler
from .data import Standardizer, minibatches, one_hot, train_dev_test_split
from .diagnose import diagnose
from .engine.threads import threads
from .gradcheck import gradient_check
from .io import load, save
from .layers import Activation, BatchNorm, Dense, Dropout
from .model import MLP, NotFittedError, Sequential
from .optim import SGD, Adam, AdamW, Momentum, Nesterov, Optimizer, RMSprop
from . import schedules

__version__ = "0.1.0"

__all__ = ["reference", "kernels", "resolve_backend", "__version__",
           "MLP", "Sequential", "NotFittedError",
           "Dense", "BatchNorm", "Activation", "Dropout",
           "Optimizer", "SGD", "Momentum", "Nesterov", "RMSprop", "Adam", "AdamW",
           "schedules", "Callback", "EarlyStopping", "History", "ModelCheckpoint",
           "CSVLogger", "ReduceLROnPlateau", "LearningRateScheduler", "GradientMonitor",
           "threads", "gradient_check", "diagnose", "load", "save",
           "train_dev_test_split", "Standardizer", "one_hot", "minibatches", "Augment"]
