"""The results table of a search: one row (a dict) per trial.

Columns: trial, round, the hyperparameters, train_loss, train_accuracy, dev_loss,
dev_accuracy, epochs, time (seconds), status ("ok" or "error"), error, traceback, and
history (per-epoch learning curves, a dict of lists; JSON in CSV files).

In CSV files every value reads back with its type, so that a resumed search sees its
parameters as it drew them: ints and bools as Python writes them, floats with repr (a
"." or an exponent), lists and dicts as JSON (tuples come back as lists), and strings
plain unless they would read back as something else ("001", "1e3", "True", "", "[1]"):
those are written as JSON strings, in double quotes.
"""
import csv
import json
import math

# metrics where smaller is better; everything else sorts best-first descending
_SMALLER_IS_BETTER = ("loss", "time", "error")


def _descending(key):
    return not any(word in key for word in _SMALLER_IS_BETTER)


class Results:
    """Rows of trial results with sorting, the best row and CSV / pandas export.

    Parameters
    ----------
    rows : list of dict
    params : list of str
        The hyperparameter column names.
    """

    def __init__(self, rows=(), params=()):
        self.rows = [dict(r) for r in rows]
        self.params = list(params)

    # ------------------------------------------------------------------ access
    def __len__(self):
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    def __getitem__(self, i):
        return self.rows[i]

    @property
    def columns(self):
        cols = []
        for r in self.rows:
            cols += [c for c in r if c not in cols]
        return cols

    def column(self, name):
        """The values of one column (None where a row lacks it)."""
        return [r.get(name) for r in self.rows]

    @property
    def ok(self):
        """The rows of trials that finished without error."""
        return Results([r for r in self.rows if r.get("status") == "ok"], self.params)

    @property
    def failed(self):
        return Results([r for r in self.rows if r.get("status") != "ok"], self.params)

    # ------------------------------------------------------------------ ranking
    def sort(self, key="dev_accuracy", descending=None):
        """A new Results sorted best first by ``key`` (descending unless ``key`` is a
        loss, time or error); failed trials and missing or NaN values go last."""
        if descending is None:
            descending = _descending(key)

        def rank(r):
            v = r.get(key)
            bad = (r.get("status", "ok") != "ok" or v is None
                   or (isinstance(v, float) and math.isnan(v)))
            if bad:
                return (1, 0)
            return (0, -v if descending else v)

        return Results(sorted(self.rows, key=rank), self.params)

    def best(self, key="dev_accuracy", descending=None):
        """The best successful row by ``key``; raises if no trial succeeded."""
        ok = self.ok
        if not len(ok):
            raise ValueError("no trial finished without error")
        return ok.sort(key, descending).rows[0]

    def top(self, k, key="dev_accuracy", descending=None):
        return Results(self.ok.sort(key, descending).rows[:k], self.params)

    # ------------------------------------------------------------------ export
    def to_csv(self, path):
        """Write the table to ``path`` (history and other containers as JSON)."""
        cols = self.columns
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(cols)
            for r in self.rows:
                w.writerow([_encode(r.get(c)) for c in cols])

    @classmethod
    def from_csv(cls, path, params=None):
        """Read a table written by ``to_csv`` (numbers and JSON decoded)."""
        with open(path, newline="") as f:
            reader = csv.reader(f)
            try:
                cols = next(reader)
            except StopIteration:
                return cls([], params or ())
            rows = []
            for line in reader:
                rows.append({c: _decode(v) for c, v in zip(cols, line) if v != ""})
        return cls(rows, params or ())

    def to_pandas(self):
        """A pandas DataFrame of the table (needs pandas)."""
        try:
            import pandas as pd
        except ImportError as e:
            raise ImportError("Results.to_pandas needs pandas: pip install pandas") from e
        return pd.DataFrame(self.rows, columns=self.columns)

    def table(self, n=10, key="dev_accuracy"):
        """The best ``n`` rows as aligned text."""
        cols = ["trial"] + self.params + [c for c in ("train_accuracy", "dev_accuracy",
                                                      "dev_loss", "epochs", "time", "status")
                                          if c in self.columns]
        rows = self.sort(key).rows[:n]
        cells = [[_fmt(r.get(c)) for c in cols] for r in rows]
        widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(cols)]
        lines = ["  ".join(c.rjust(w) for c, w in zip(cols, widths))]
        lines += ["  ".join(x.rjust(w) for x, w in zip(row, widths)) for row in cells]
        return "\n".join(lines)

    def __repr__(self):
        return f"Results({len(self)} trials, {len(self.ok)} ok)\n" + self.table()


def _fmt(v):
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else str(v)


def _encode(v):
    if v is None:
        return ""
    if isinstance(v, str):
        # plain when it reads back as itself: "relu" stays relu, "001" becomes "\"001\""
        back = _decode(v)
        plain = v != "" and isinstance(back, str) and back == v
        return v if plain else json.dumps(v)
    if isinstance(v, (dict, list, tuple)):
        return json.dumps(v)
    if isinstance(v, float):
        return repr(float(v))   # NumPy 2 writes np.float64(0.5) for a float64's repr
    return str(v)


def _decode(s):
    if s in ("True", "False"):
        return s == "True"
    for conv in (int, float):
        try:
            return conv(s)
        except ValueError:
            pass
    if s[:1] in '["{':
        try:
            return json.loads(s)
        except ValueError:
            pass
    return s
