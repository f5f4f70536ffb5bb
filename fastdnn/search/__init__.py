"""Hyperparameter search: spaces on their own scales, random search and coarse to fine
over any Executor, the caviar fast path (K models trained together), the panda
callback (babysitting one model) and the results table (summary, DataFrame, plot)."""
from .caviar import caviar_search, train_caviar
from .panda import Panda, reduce_lr_on_plateau
from .results import Results, Trial
from .runner import RandomSearch, coarse_to_fine, random_search, train_mlp
from .spaces import (Choice, Grid, IntUniform, LogUniform, OneMinusLogUniform, Space,
                     Uniform, grid_configs, sample_config, space_from_config)

__all__ = ["Space", "LogUniform", "OneMinusLogUniform", "Uniform", "IntUniform", "Choice",
           "Grid", "grid_configs", "sample_config", "space_from_config", "Results", "Trial",
           "random_search", "coarse_to_fine", "RandomSearch", "train_mlp",
           "train_caviar", "caviar_search", "Panda", "reduce_lr_on_plateau"]
