"""Bias / variance diagnosis from training and dev errors (errors are fractions in [0, 1]),
and, from a History a GradientMonitor filled, the layers whose gradients vanished or
exploded."""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from ._validation import check_real
from .callbacks import EXPLODING, VANISHING, gradient_layers, gradient_trouble

#: One finding of ``gradient_findings``: (layer, "vanishing" or "exploding", first
#: epoch (from 1), ratio ||dW_l|| / ||W_l|| then).
Finding = tuple[int, str, int, float]

REMEDIES = {
    "high bias": ["train a bigger network (more units or layers)", "train longer",
                  "use a better optimizer (Adam) or tune the learning rate",
                  "reduce regularisation (smaller l2, keep_prob closer to 1)",
                  "try another architecture"],
    "high variance": ["get more training data (or augment it)",
                      "add regularisation (l2, dropout with keep_prob < 1)",
                      "use early stopping", "try a smaller network or another architecture"],
    "vanishing": ["initialise for the activation: init='he' for ReLU, 'xavier' for tanh "
                  "(not 'random')", "use ReLU rather than sigmoid or tanh in hidden layers",
                  "add BatchNorm", "use fewer layers"],
    "exploding": ["lower the learning rate", "standardize the inputs", "add BatchNorm or L2",
                  "initialise for the activation (init='he' / 'xavier')"],
}


def gradient_findings(history: Mapping[str, Sequence[float]], vanishing: float = VANISHING,
                      exploding: float = EXPLODING) -> list[Finding]:
    """The layers whose gradients vanished or exploded.

    Read from the "grad_norm_l" and "weight_norm_l" a GradientMonitor recorded
    (fastdnn.callbacks for the bounds).

    Parameters
    ----------
    history : History or dict of lists
    vanishing, exploding : float
        The bounds on ||dW_l|| / ||W_l||.

    Returns
    -------
    list of (layer, kind, first epoch (from 1), ratio ||dW_l|| / ||W_l|| then)
        kind is "vanishing" or "exploding"; a layer may appear once for each.
    """
    found = []
    for l in gradient_layers(history):
        for kind in ("vanishing", "exploding"):
            for e, (g, w) in enumerate(zip(history[f"grad_norm_{l}"],
                                           history[f"weight_norm_{l}"])):
                if gradient_trouble(g, w, vanishing, exploding) == kind:
                    found.append((l, kind, e + 1, g / w if w else float("inf")))
                    break
    return found


class Diagnosis:
    """avoidable_bias = train - bayes; variance = dev - train; verdict and remedies.

    Parameters
    ----------
    train_error, dev_error, bayes_error : float in [0, 1]
    threshold : float
        A gap above this counts as high.
    gradients : list of (layer, kind, epoch, ratio)
        ``gradient_findings``' list; its kinds add their remedies.

    Attributes
    ----------
    avoidable_bias, variance : float
    high_bias, high_variance : bool
    verdict : str
    remedies : list of str
    """

    def __init__(self, train_error: float, dev_error: float, bayes_error: float,
                 threshold: float, gradients: Iterable[Finding] = ()) -> None:
        self.train_error, self.dev_error, self.bayes_error = train_error, dev_error, bayes_error
        self.avoidable_bias = train_error - bayes_error
        self.variance = dev_error - train_error
        self.high_bias = self.avoidable_bias > threshold
        self.high_variance = self.variance > threshold
        if self.high_bias and self.high_variance:
            self.verdict = "high bias and high variance"
        elif self.high_bias:
            self.verdict = "high bias"
        elif self.high_variance:
            self.verdict = "high variance"
        else:
            self.verdict = "neither: low bias and low variance"
        self.remedies = ((REMEDIES["high bias"] if self.high_bias else []) +
                         (REMEDIES["high variance"] if self.high_variance else []))
        self.gradients = list(gradients)   # gradient_findings' list
        for kind in ("vanishing", "exploding"):
            if any(k == kind for _, k, _, _ in self.gradients):
                self.remedies += [r for r in REMEDIES[kind] if r not in self.remedies]

    def __str__(self):
        lines = [f"train error {self.train_error:.2%}, dev error {self.dev_error:.2%}, "
                 f"Bayes error {self.bayes_error:.2%}",
                 f"avoidable bias {self.avoidable_bias:.2%}, variance {self.variance:.2%}: "
                 f"{self.verdict}"]
        for layer, kind, epoch, ratio in self.gradients:
            lines.append(f"layer {layer}'s gradients were {kind} from epoch {epoch} "
                         f"(||dW|| / ||W|| = {ratio:.3g})")
        if self.high_bias:
            lines.append("first fix the bias (fit the training set), then the variance")
        lines += [f"  - {r}" for r in self.remedies]
        return "\n".join(lines)

    __repr__ = __str__


def diagnose(train_error: float | Mapping[str, Sequence[float]],
             dev_error: float | None = None, bayes_error: float = 0.0, *,
             threshold: float = 0.02) -> Diagnosis:
    """Say whether a model has high bias, high variance, both or neither.

    Parameters
    ----------
    train_error, dev_error : float in [0, 1]
        Error rates (1 - accuracy). ``train_error`` may instead be a fit History with
        "accuracy" and "val_accuracy": the last epoch's (or the best epoch's) are used,
        and the layers whose gradients vanished or exploded are named when a
        GradientMonitor recorded their norms (``Diagnosis.gradients``).
    bayes_error : float
        The best achievable error (human-level as a proxy).
    threshold : float
        A gap above this counts as high.

    Returns
    -------
    Diagnosis
    """
    if isinstance(train_error, dict):
        history = train_error
        if "accuracy" not in history or "val_accuracy" not in history:
            raise ValueError("the history needs 'accuracy' and 'val_accuracy': fit a "
                             "classifier with validation_data")
        best = getattr(history, "best_epoch", None)   # counted from 1
        i = -1 if best is None else best - 1
        train_error, dev_error = 1 - history["accuracy"][i], 1 - history["val_accuracy"][i]
        gradients = gradient_findings(history)
    elif dev_error is None:
        raise TypeError("diagnose needs dev_error (or a History as the first argument)")
    else:
        gradients = []
    train_error = check_real("train_error", train_error, 0.0, 1.0)
    dev_error = check_real("dev_error", dev_error, 0.0, 1.0)
    bayes_error = check_real("bayes_error", bayes_error, 0.0, 1.0)
    threshold = check_real("threshold", threshold, 0.0)
    return Diagnosis(train_error, dev_error, bayes_error, threshold, gradients)
