"""The results table of a search: one row (a dict) per trial, and its faces: a short
summary, a pandas DataFrame and a plot of the score against each hyperparameter.

Columns: trial, round, the hyperparameters, train_loss, train_accuracy, dev_loss,
dev_accuracy, epochs, time (seconds), status ("ok" or "error"), error, traceback, and
history (per-epoch learning curves, a dict of lists; JSON in CSV files).

In CSV files every value reads back with its type, so that a resumed search sees its
parameters as it drew them: ints and bools as Python writes them, floats with repr (a
"." or an exponent), lists and dicts as JSON (tuples come back as lists), and strings
plain unless they would read back as something else ("001", "1e3", "True", "", "[1]"):
those are written as JSON strings, in double quotes.
"""
from __future__ import annotations

import collections
import csv
import json
import math
import numbers
import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas
    from matplotlib.figure import Figure

    from .spaces import Space, SpaceLike

# metrics where smaller is better; everything else sorts best-first descending
_SMALLER_IS_BETTER = ("loss", "time", "error")
_METRICS = ("train_loss", "train_accuracy", "dev_loss", "dev_accuracy")
# columns the search writes itself: neither hyperparameters nor metrics
_BOOKKEEPING = ("trial", "round", "epochs", "time", "status", "error", "traceback",
                "history")


def _descending(key):
    return not any(word in key for word in _SMALLER_IS_BETTER)


class Trial(dict):
    """One trial's row: a dict (``trial["dev_accuracy"]`` as ever) that prints as a summary.

    The summary leaves out the per-epoch history and the traceback (still there as keys).

    Parameters
    ----------
    row : dict
        The row, as the search wrote it.
    param_names : list of str, optional
        Which keys are hyperparameters; without it, every key that is neither a metric
        nor a column the search writes itself.
    """

    def __init__(self, row: Mapping[str, Any] | Iterable[tuple[str, Any]] = (),
                 param_names: Iterable[str] | None = None) -> None:
        super().__init__(row)
        self.param_names = (list(param_names) if param_names
                            else _guess_param_names([self]))

    @property
    def hyperparameters(self) -> dict[str, Any]:
        """The trial's hyperparameters, name -> value."""
        return {name: self[name] for name in self.param_names if name in self}

    @property
    def metrics(self) -> dict[str, Any]:
        """The trial function's results, name -> value.

        Every key but the hyperparameters and the search's own columns (epochs, time,
        history, ...).
        """
        return {k: v for k, v in self.items()
                if k not in self.param_names and k not in _BOOKKEEPING}

    def summary(self) -> str:
        """A few lines describing the trial.

        Returns
        -------
        str
            The trial, its status, epochs and time, its hyperparameters, its dev and
            train metrics, any other scalar it returned and the first line of its error.
        """
        head = [f"round {self['round']}"] if "round" in self else []
        head.append(str(self.get("status", "?")))
        if "epochs" in self:
            head.append(f"{self['epochs']} epochs")
        if isinstance(self.get("time"), numbers.Real):
            head.append(f"{self['time']:.2f} s")
        lines = [f"Trial {self.get('trial', '?')} ({', '.join(head)})"]
        params = self.hyperparameters
        lines.append("  " + (", ".join(f"{k}={_fmt(v)}" for k, v in params.items())
                             or "no hyperparameters"))
        metrics = self.metrics
        for split in ("dev", "train"):
            shown = [f"{m}={_fmt(metrics.pop(f'{split}_{m}'))}"
                     for m in ("accuracy", "loss") if f"{split}_{m}" in metrics]
            if shown:
                lines.append(f"  {split}: " + "  ".join(shown))
        other = [f"{k}={_fmt(v)}" for k, v in metrics.items()
                 if not isinstance(v, (dict, list, tuple))]
        if other:
            lines.append("  other: " + "  ".join(other))
        if self.get("error"):
            lines.append("  error: " + _first_line(self["error"], 200))
        return "\n".join(lines)

    def __repr__(self):
        return self.summary()

    def _repr_pretty_(self, printer, cycle):   # IPython would print it as a dict
        printer.text(self.summary())


class Results:
    """Rows of trial results with sorting, the best row and CSV / pandas export.

    ``print(results)`` shows a summary (counts, the best trials as a table);
    ``results.best()`` is a Trial, ``results.to_frame()`` a DataFrame and
    ``results.plot()`` draws the score against each hyperparameter.

    Parameters
    ----------
    rows : list of dict
        One per trial (copied).
    params : list of str
        The hyperparameter column names.
    spaces : list of dict name -> Space, optional
        The space each round sampled (set by the searches); ``plot`` reads the scale of
        each hyperparameter from the first.

    Attributes
    ----------
    resumed : list of int
        The trials a search read back from its results_file instead of running them
        (empty for a fresh search).
    """

    def __init__(self, rows: Iterable[Mapping[str, Any]] = (), params: Iterable[str] = (),
                 spaces: Iterable[Mapping[str, Space]] = ()) -> None:
        self.rows = [dict(r) for r in rows]
        self.params = list(params)
        self.spaces = list(spaces)
        self.resumed = []

    def _subset(self, rows):
        """A Results of some of these rows, keeping the parameter names and spaces."""
        return Results(rows, self.params, getattr(self, "spaces", ()))

    # ------------------------------------------------------------------ access
    def __len__(self):
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    def __getitem__(self, i):
        return self.rows[i]

    @property
    def columns(self) -> list[str]:
        """Every column of any row, in the order they first appear."""
        cols = []
        for r in self.rows:
            cols += [c for c in r if c not in cols]
        return cols

    def column(self, name: str) -> list[Any]:
        """The values of one column (None where a row lacks it).

        Parameters
        ----------
        name : str

        Returns
        -------
        list
            One value per row.
        """
        return [r.get(name) for r in self.rows]

    @property
    def param_names(self) -> list[str]:
        """The hyperparameter columns.

        ``params`` as the search gave them or, for a table read without them, every
        column that is neither a metric nor one the search writes itself.
        """
        return list(self.params) or _guess_param_names(self.rows)

    @property
    def ok(self) -> Results:
        """The rows of trials that finished without error."""
        return self._subset([r for r in self.rows if r.get("status") == "ok"])

    @property
    def failed(self) -> Results:
        """The rows of trials that did not finish ("error" or no status)."""
        return self._subset([r for r in self.rows if r.get("status") != "ok"])

    # ------------------------------------------------------------------ ranking
    def sort(self, key: str = "dev_accuracy", descending: bool | None = None) -> Results:
        """A new Results sorted best first by ``key``.

        Failed trials and missing or NaN values go last; ties go to the lower
        dev_loss, then the lower trial number.

        Parameters
        ----------
        key : str
            The column to sort by.
        descending : bool, optional
            Default: descending unless ``key`` names a loss, time or error.

        Returns
        -------
        Results
        """
        if descending is None:
            descending = _descending(key)

        def rank(r):
            v = r.get(key)
            bad = (r.get("status", "ok") != "ok" or v is None
                   or (isinstance(v, float) and math.isnan(v)))
            if bad:
                return (1, 0, 0, _number_or_inf(r.get("trial")))
            # ties (a small dev set gives many equal accuracies): the lower dev_loss,
            # then the earlier trial
            tie = _number_or_inf(r.get("dev_loss")) if key != "dev_loss" else 0
            return (0, -v if descending else v, tie, _number_or_inf(r.get("trial")))

        return self._subset(sorted(self.rows, key=rank))

    def best(self, key: str = "dev_accuracy", descending: bool | None = None) -> Trial:
        """The best successful row by ``key``.

        Parameters
        ----------
        key, descending
            As in ``sort``.

        Returns
        -------
        Trial
            A dict that prints as a summary.

        Raises
        ------
        ValueError
            When no trial succeeded.
        """
        ok = self.ok
        if not len(ok):
            raise ValueError("no trial finished without error")
        return Trial(ok.sort(key, descending).rows[0], self.param_names)

    def top(self, k: int, key: str = "dev_accuracy",
            descending: bool | None = None) -> Results:
        """The ``k`` best successful rows, best first.

        Parameters
        ----------
        k : int
        key, descending
            As in ``sort``.

        Returns
        -------
        Results
        """
        return self._subset(self.ok.sort(key, descending).rows[:k])

    # ------------------------------------------------------------------ export
    def to_csv(self, path: str | os.PathLike[str]) -> None:
        """Write the table to ``path`` (history and other containers as JSON).

        Parameters
        ----------
        path : str or path
        """
        cols = self.columns
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(cols)
            for r in self.rows:
                w.writerow([_encode(r.get(c)) for c in cols])

    @classmethod
    def from_csv(cls, path: str | os.PathLike[str],
                 params: Iterable[str] | None = None) -> Results:
        """Read a table written by ``to_csv`` (numbers and JSON decoded).

        Parameters
        ----------
        path : str or path
        params : list of str, optional
            The hyperparameter column names; default a guess (see ``param_names``).

        Returns
        -------
        Results
        """
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

    def to_pandas(self) -> pandas.DataFrame:
        """A pandas DataFrame of the whole table, histories included (needs pandas).

        ``to_frame`` is the one to read.

        Returns
        -------
        pandas.DataFrame
        """
        pd = _import_optional("pandas", "Results.to_pandas", "pandas")
        return pd.DataFrame(self.rows, columns=self.columns)

    def to_frame(self) -> pandas.DataFrame:
        """A pandas DataFrame with one row per trial, indexed by trial number.

        The hyperparameters, then the metrics, epochs, time, status and error; without
        the per-epoch histories and tracebacks (needs pandas).

        Returns
        -------
        pandas.DataFrame
        """
        pd = _import_optional("pandas", "Results.to_frame", "pandas")
        cols = self._ordered_columns()
        frame = pd.DataFrame([{c: r.get(c) for c in cols} for r in self.rows],
                             columns=cols)
        return frame.set_index("trial") if "trial" in cols else frame

    def _ordered_columns(self):
        """trial, round, hyperparameters, metrics, other scalars, then bookkeeping."""
        present = self.columns
        params = self.param_names
        first = [c for c in ("trial", "round") if c in present]
        # "epochs" may be a hyperparameter too: one column
        last = [c for c in ("epochs", "time", "status", "error")
                if c in present and c not in params]
        metrics = [c for c in _METRICS if c in present]
        taken = set(first + params + metrics + last) | {"history", "traceback"}
        other = [c for c in present if c not in taken]
        return first + [p for p in params if p in present] + metrics + other + last

    def table(self, n: int = 10, key: str = "dev_accuracy") -> str:
        """The best ``n`` rows as aligned text.

        Parameters
        ----------
        n : int
        key : str
            The column to rank by (see ``sort``).

        Returns
        -------
        str
            A header line, then one line per row.
        """
        params = self.param_names
        cols = ["trial"] + params + [c for c in ("train_accuracy", "dev_accuracy",
                                                 "dev_loss", "epochs", "time", "status")
                                     if c in self.columns and c not in params]
        rows = self.sort(key).rows[:n]
        cells = [[_fmt(r.get(c), c) for c in cols] for r in rows]
        widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(cols)]
        lines = ["  ".join(c.rjust(w) for c, w in zip(cols, widths))]
        lines += ["  ".join(x.rjust(w) for x, w in zip(row, widths)) for row in cells]
        return "\n".join(lines)

    def summary(self, k: int = 5, key: str = "dev_accuracy") -> str:
        """A short text: counts, the best trial by ``key`` and a table of the ``k`` best.

        The counts are of the trials that finished and failed (by error type).

        Parameters
        ----------
        k : int
            Rows of the table.
        key : str
            The column to rank by (see ``sort``).

        Returns
        -------
        str
        """
        ok, failed = self.ok, self.failed
        head = f"Results: {len(self)} trials, {len(ok)} ok, {len(failed)} failed"
        if len(failed):
            kinds = collections.Counter(_first_line(r.get("error") or "unknown", 60)
                                        .split(":")[0] for r in failed)
            head += " (" + ", ".join(f"{n} {kind}" for kind, n in kinds.most_common(3))
            head += ", ..." if len(kinds) > 3 else ""
            head += "; see .failed)"
        if not len(ok):
            return head
        scored = [r for r in ok if isinstance(r.get(key), numbers.Real)]
        if not scored:
            return head + "\n" + ok.table(k, key)
        best = ok.sort(key).rows[0]
        head += f"\nbest {key} {_fmt(best[key])} (trial {best.get('trial', '?')})"
        head += f"; the {min(k, len(ok))} best:" if len(ok) > 1 else ":"
        return head + "\n" + ok.table(k, key)

    def __repr__(self):
        return self.summary()

    # ------------------------------------------------------------------ plot
    def plot(self, metric: str = "dev_accuracy", path: str | os.PathLike[str] | None = None,
             *, space: Mapping[str, SpaceLike] | None = None) -> Figure:
        """Draw ``metric`` against each hyperparameter, one panel each.

        Each on the scale the search sampled it on: a log x-axis for LogUniform (and
        IntUniform(log=True)), 1 - x on a log axis for OneMinusLogUniform (ticks read
        0.9, 0.99, 0.999), categories for Choice and Grid. The best trial is a red star;
        coarse-to-fine rounds get a colour each. Hyperparameters that never changed are
        left out, and so are failed trials (their number is in the title).

        Parameters
        ----------
        metric : str
            A numeric column, e.g. "dev_accuracy" or "dev_loss" (smaller is best).
        path : str or path-like, optional
            Where to save the figure (the format from its extension, e.g. .png).
        space : dict name -> Space, optional
            The scales to use; default the space the search ran (``self.spaces[0]``),
            or, for a table read from CSV, a guess: the scale on which the values
            spread most evenly.

        Returns
        -------
        matplotlib.figure.Figure
        """
        plt = _import_optional("matplotlib.pyplot", "Results.plot",
                               "matplotlib (or fastdnn[plot])")
        ok = self._subset([r for r in self.ok if _is_number(r.get(metric))])
        if not len(ok):
            numeric = [c for c in self.columns
                       if any(_is_number(v) for v in self.column(c))]
            raise ValueError(f"metric {metric!r}: no finished trial has a number there; "
                             f"numeric columns: {numeric}")
        names = self.param_names
        if not names:
            raise ValueError("the table names no hyperparameters to plot (pass params= "
                             "to Results or from_csv)")
        varied = [n for n in names if len({repr(v) for v in ok.column(n)}) > 1]
        names = varied or names
        space = _space_dict(space if space is not None
                            else (getattr(self, "spaces", None) or [{}])[0])
        best = ok.best(metric)
        rounds = sorted({r.get("round", 0) for r in ok})
        n_cols = min(len(names), 3)
        n_rows = -(-len(names) // n_cols)
        fig, axes = plt.subplots(n_rows, n_cols, figsize=(3.3 * n_cols, 2.7 * n_rows),
                                 squeeze=False, sharey=True)
        for ax, name in zip(axes.flat, names):
            rows = [r for r in ok if name in r]
            to_x = _draw_axis(ax, name, space.get(name), [r[name] for r in rows])
            for rnd in rounds:
                mine = [r for r in rows if r.get("round", 0) == rnd]
                ax.scatter([to_x(r[name]) for r in mine], [r[metric] for r in mine],
                           s=14, alpha=0.75, color=f"C{rnd % 10}",
                           label=f"round {rnd}" if len(rounds) > 1 else "trials")
            if name in best:
                ax.scatter([to_x(best[name])], [best[metric]], marker="*", s=160,
                           color="red", edgecolor="black", linewidth=0.5, zorder=3,
                           label=f"best: trial {best.get('trial', '?')}")
            ax.grid(True, alpha=0.3)
        for ax in axes[:, 0]:
            ax.set_ylabel(metric)
        for ax in axes.flat[len(names):]:
            ax.set_visible(False)
        axes[0, 0].legend(fontsize=7)
        title = f"{metric} of {len(ok)} trials"
        if len(ok) < len(self):
            title += f" ({len(self) - len(ok)} failed or unscored, not shown)"
        fig.suptitle(title, fontsize=10)
        fig.tight_layout()
        if path is not None:
            fig.savefig(path)
        return fig


def _draw_axis(ax, name, space, values):
    """Set up ``ax``'s x-axis for hyperparameter ``name``; returns value -> x."""
    scale = getattr(space, "scale", None) or _guess_scale(values)
    numeric = all(_is_number(v) for v in values)
    ax.set_xlabel(name)
    if scale == "log" and numeric and min(values) > 0:
        from .plots import _integer_log_ticks
        ax.set_xscale("log")
        _integer_log_ticks(ax, values)   # hidden_units: 50 100 200, not 3x10^1 4x10^1
        return float
    if scale == "one_minus_log" and numeric and max(values) < 1:
        # 1 - x on a log axis, reversed so that larger x is to the right; the ticks
        # name x itself: 0.9, 0.99, 0.999
        from matplotlib.ticker import FuncFormatter, NullFormatter
        ax.set_xscale("log")
        ax.invert_xaxis()
        label = FuncFormatter(lambda u, _: f"{1 - u:.6g}")
        ax.xaxis.set_major_formatter(label)
        gaps = [1 - float(v) for v in values]
        few_decades = math.log10(max(gaps) / min(gaps)) < 1.2
        ax.xaxis.set_minor_formatter(label if few_decades else NullFormatter())
        ax.tick_params(axis="x", which="minor", labelsize=6)
        return lambda v: 1 - float(v)
    if scale == "choice" or not numeric:
        # the space's options in its order (unseen ones too: an empty column says
        # something), then any value it does not list, sorted
        categories = list(getattr(space, "options", None) or
                          getattr(space, "values", None) or [])
        seen = sorted({repr(v): v for v in values}.values(), key=_category_order)
        categories += [v for v in seen if repr(v) not in {repr(c) for c in categories}]
        positions = {repr(v): i for i, v in enumerate(categories)}
        ax.set_xticks(range(len(categories)), [str(v) for v in categories])
        ax.set_xlim(-0.5, len(categories) - 0.5)
        return lambda v: positions[repr(v)]
    return float


def _guess_scale(values):
    """The scale of a hyperparameter read from a CSV: categories unless all numbers;
    else the scale on which the values spread most evenly (a search draws them
    uniformly on theirs), among those where they span a decade or more."""
    if not values or not all(_is_number(v) for v in values):
        return "choice"
    x = np.sort(np.asarray(values, dtype=np.float64))
    candidates = {"linear": x}
    if x[0] > 0 and x[-1] / x[0] >= 10:
        candidates["log"] = np.log10(x)
    if x[0] >= 0 and x[-1] < 1 and (1 - x[0]) / (1 - x[-1]) >= 10:
        candidates["one_minus_log"] = -np.log10(1 - x)
    return min(candidates, key=lambda scale: _distance_from_uniform(candidates[scale]))


def _distance_from_uniform(t):
    """Kolmogorov-Smirnov distance of sorted values ``t`` from a uniform spread over
    [t[0], t[-1]]."""
    if len(t) < 3 or t[-1] == t[0]:
        return 0.0
    u = (t - t[0]) / (t[-1] - t[0])
    return float(np.abs(u - (np.arange(len(t)) + 0.5) / len(t)).max())


def _category_order(v):
    return (0, v, "") if _is_number(v) else (1, 0, str(v))


def _space_dict(space):
    from .spaces import as_space
    if not isinstance(space, dict):
        raise TypeError(f"space must be a dict name -> Space, got {space!r}")
    return {name: as_space(s) for name, s in space.items()}


def _number_or_inf(v):
    return float(v) if _is_number(v) else math.inf


def _is_number(v):
    return (isinstance(v, numbers.Real) and not isinstance(v, bool)
            and not (isinstance(v, float) and math.isnan(v)))


def _guess_param_names(rows):
    names = []
    for r in rows:
        names += [k for k, v in r.items() if k not in names and k not in _BOOKKEEPING
                  and k not in _METRICS and not isinstance(v, (dict, list))]
    return names


def _first_line(text, width):
    line = str(text).strip().splitlines()[0] if str(text).strip() else ""
    return line if len(line) <= width else line[:width - 3] + "..."


def _import_optional(module, who, install):
    import importlib
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(f"{who} needs {module.split('.')[0]}: pip install {install}") \
            from e


def _fmt(v, column=None):
    if column == "time" and isinstance(v, float):
        return f"{v:.2f}"
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
