"""Bias / variance diagnosis from training and dev errors (errors are fractions in [0, 1])."""
from ._validation import check_real

REMEDIES = {
    "high bias": ["train a bigger network (more units or layers)", "train longer",
                  "use a better optimizer (Adam) or tune the learning rate",
                  "reduce regularisation (smaller l2, keep_prob closer to 1)",
                  "try another architecture"],
    "high variance": ["get more training data (or augment it)",
                      "add regularisation (l2, dropout with keep_prob < 1)",
                      "use early stopping", "try a smaller network or another architecture"],
}


class Diagnosis:
    """avoidable_bias = train - bayes; variance = dev - train; verdict and remedies."""

    def __init__(self, train_error, dev_error, bayes_error, threshold):
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

    def __str__(self):
        lines = [f"train error {self.train_error:.2%}, dev error {self.dev_error:.2%}, "
                 f"Bayes error {self.bayes_error:.2%}",
                 f"avoidable bias {self.avoidable_bias:.2%}, variance {self.variance:.2%}: "
                 f"{self.verdict}"]
        if self.high_bias:
            lines.append("first fix the bias (fit the training set), then the variance")
        lines += [f"  - {r}" for r in self.remedies]
        return "\n".join(lines)

    __repr__ = __str__


def diagnose(train_error, dev_error=None, bayes_error=0.0, *, threshold=0.02):
    """Say whether a model has high bias, high variance, both or neither.

    Parameters
    ----------
    train_error, dev_error : float in [0, 1]
        Error rates (1 - accuracy). ``train_error`` may instead be a fit History with
        "accuracy" and "val_accuracy": the last epoch's (or the best epoch's) are used.
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
        i = getattr(history, "best_epoch", None)
        i = -1 if i is None else i
        train_error, dev_error = 1 - history["accuracy"][i], 1 - history["val_accuracy"][i]
    elif dev_error is None:
        raise TypeError("diagnose needs dev_error (or a History as the first argument)")
    train_error = check_real("train_error", train_error, 0.0, 1.0)
    dev_error = check_real("dev_error", dev_error, 0.0, 1.0)
    bayes_error = check_real("bayes_error", bayes_error, 0.0, 1.0)
    threshold = check_real("threshold", threshold, 0.0)
    return Diagnosis(train_error, dev_error, bayes_error, threshold)
