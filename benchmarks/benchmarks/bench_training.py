"""A full training step and a training epoch of the MNIST-sized MLP 784-512-256-10.

Hidden layers: dense (no bias) -> BatchNorm -> ReLU -> dropout (keep 0.8); softmax
cross-entropy output; Adam (lr 1e-3). m = batch size. Skipped while fastdnn.MLP is absent.
"""
from .common import (BACKENDS, BATCHES, NETWORK, Benchmark, classification_data,
                     get_kernels, mlp_or_skip, sync)

EPOCH_SAMPLES = 8192
EPOCH_BATCH = 128


def make_model(backend, dtype):
    get_kernels(backend)  # skip unusable backends before building anything
    MLP, optim = mlp_or_skip()
    model = MLP(NETWORK, batchnorm=True, keep_prob=0.8, dtype=dtype, backend=backend, seed=0)
    return model, optim


class TrainingStep(Benchmark):
    params = [BACKENDS, BATCHES, ["float32"]]
    param_names = ["backend", "batch", "dtype"]

    def setup(self, backend, m, dtype):
        self.model, optim = make_model(backend, dtype)
        self.optimizer = optim.Adam(lr=1e-3)
        self.backend = backend
        self.X, self.y = classification_data(m, NETWORK[0], NETWORK[-1], dtype)
        for _ in range(2):  # compile and allocate before timing
            self.time_train_step(backend, m, dtype)

    def time_train_step(self, backend, m, dtype):
        self.model.train_step(self.X, self.y, self.optimizer)
        sync(self.backend)


class TrainingEpoch(Benchmark):
    """One ``fit`` epoch over 8192 samples in batches of 128 (64 steps), data on the host:
    the configuration of benchmarks/fit_epoch.py on fewer rows."""
    params = [BACKENDS, ["float32"]]
    param_names = ["backend", "dtype"]
    repeat = (1, 3, 2.0)
    number = 1

    def setup(self, backend, dtype):
        self.model, optim = make_model(backend, dtype)
        self.optimizer = optim.Adam(lr=1e-3)
        self.backend = backend
        self.X, self.y = classification_data(EPOCH_SAMPLES, NETWORK[0], NETWORK[-1], dtype)
        self.fit(self.X[:2 * EPOCH_BATCH], self.y[:2 * EPOCH_BATCH])  # compile, allocate

    def fit(self, X=None, y=None):
        self.model.fit(self.X if X is None else X, self.y if y is None else y,
                       optimizer=self.optimizer, epochs=1, batch_size=EPOCH_BATCH,
                       verbose=0)
        sync(self.backend)

    def time_epoch(self, backend, dtype):
        self.fit()

    def peakmem_epoch(self, backend, dtype):
        self.fit()
