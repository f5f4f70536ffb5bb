"""The public API is documented (numpydoc) and annotated (PEP 484), module by module (#16).

For every public function, class and method that a module of MODULES defines:

- a docstring that parses (numpydoc's FunctionDoc / ClassDoc when numpydoc is installed,
  with its warnings as errors; otherwise the small parser below), with a one-line summary;
- every parameter of the signature documented under Parameters (or Other Parameters),
  and no documented parameter that the signature lacks (a class documents its
  constructor's);
- a Returns (or Yields) section unless the return annotation is None, and none if it is;
- an annotation on every parameter and on the return (``__init__ -> None``).

Walked: what the module defines (``obj.__module__``), not what it re-exports; methods
whose names do not start with "_" (and ``__call__``), properties (a summary and a return
annotation), those a class inherits from a private base of the same module (the
estimators' ``fit`` from ``_BaseMLP``) and those behind a wrapping descriptor
(scikit-learn's ``available_if``, through ``__wrapped__``). Numba's compiled functions
(CPU and CUDA dispatchers, the simulator's kernels) are skipped: users do not call them
and Numba owns their signatures.

To cover another module, add it to MODULES; ``"package.module:name,other"`` checks only
the names given (the public names a private module lends its package). A package that
defines nothing and only re-exports (fastdnn.search) passes when every name it exports
is checked where it is defined, by another entry of MODULES.
``api_problems(module)`` is the whole check, for use elsewhere.

PUBLIC_NAMESPACES are where users import from: every function, class and module they
export must be checked by an entry of MODULES (``unchecked_names``), so that the public
API cannot grow undocumented.
"""
import importlib
import inspect
import re
import types
import warnings

import pytest

try:
    from numpydoc.docscrape import ClassDoc, FunctionDoc
except ImportError:   # pragma: no cover - numpydoc is in the test extra
    ClassDoc = FunctionDoc = None

MODULES = [
    "fastdnn.reference.activations",
    "fastdnn.reference.averages",
    "fastdnn.reference.batchnorm",
    "fastdnn.reference.dense",
    "fastdnn.reference.dropout",
    "fastdnn.reference.init",
    "fastdnn.reference.losses",
    "fastdnn.reference.optim",
    "fastdnn.reference.schedules",
    "fastdnn.cpu.activations",
    "fastdnn.cpu.batchnorm",
    "fastdnn.cpu.dense",
    "fastdnn.cpu.dropout",
    "fastdnn.cpu.losses",
    "fastdnn.cpu.optim",
    "fastdnn.cpu._blas:owned_threads",
    "fastdnn.cuda.activations",
    "fastdnn.cuda.batchnorm",
    "fastdnn.cuda.dense",
    "fastdnn.cuda.losses",
    "fastdnn.cuda.optim",
    "fastdnn.cuda._device:is_device_array,to_device,to_host,zeros_like",
    "fastdnn.optim",
    "fastdnn.schedules",
    "fastdnn.layers",
    "fastdnn.data",
    "fastdnn.gradcheck",
    "fastdnn.io",
    "fastdnn.export",
    "fastdnn.backend",
    "fastdnn.callbacks",
    "fastdnn.diagnose",
    "fastdnn.cli",
    "fastdnn.profile",
    "fastdnn.search",
    "fastdnn.search.spaces",
    "fastdnn.search.results",
    "fastdnn.search.runner",
    "fastdnn.search.caviar",
    "fastdnn.search.panda",
    "fastdnn.search.plots",
    "fastdnn.search.cli",
    "fastdnn.course",
    "fastdnn.course.initialization",
    "fastdnn.course.regularization",
    "fastdnn.course.gradient_checking",
    "fastdnn.course.optimization",
    "fastdnn.course._utils:sigmoid,relu,update_parameters,plot_decision_boundary",
    "fastdnn.model",
    "fastdnn.sklearn",
    "fastdnn.augment",
    "fastdnn.reference.augment",
    "fastdnn.rng",
    "fastdnn.engine.threads",
    "fastdnn.reference",
]

#: Where users import from: each name they export must be checked by MODULES.
PUBLIC_NAMESPACES = ["fastdnn", "fastdnn.reference", "fastdnn.sklearn", "fastdnn.search",
                     "fastdnn.export", "fastdnn.io", "fastdnn.course"]

#: Dunder methods that users call, walked like public methods.
CALLED_DUNDERS = ("__call__",)

#: numpydoc's sections (the fallback parser refuses any other).
SECTIONS = ("Parameters", "Returns", "Yields", "Receives", "Raises", "Warns",
            "Other Parameters", "Attributes", "Methods", "See Also", "Notes", "Warnings",
            "References", "Examples")


# ---------------------------------------------------------------------- the walk
def is_compiled(obj):
    """True for Numba's CPU and CUDA dispatchers and the CUDA simulator's kernels."""
    return type(obj).__module__.split(".")[0] in ("numba", "numba_cuda")


def public_api(module, names=None):
    """[(qualified name, kind, object)] of what ``module`` defines and users call.

    kind is "function", "class", "method", "classmethod", "staticmethod" or
    "property". ``names`` restricts the walk to those module attributes.
    """
    if names is None:
        names = getattr(module, "__all__", None) or [
            n for n in vars(module) if not n.startswith("_")]
    found = []
    for name in names:
        obj = getattr(module, name)
        if is_compiled(obj) or getattr(obj, "__module__", None) != module.__name__:
            continue   # compiled, a re-export, or not a function or class
        if inspect.isfunction(obj):
            found.append((name, "function", obj))
        elif inspect.isclass(obj):
            found.append((name, "class", obj))
            for attr, member in class_members(obj, module.__name__):
                if attr.startswith("_") and attr not in CALLED_DUNDERS:
                    continue
                qualname = f"{name}.{attr}"
                if isinstance(member, property):
                    found.append((qualname, "property", member))
                elif isinstance(member, (classmethod, staticmethod)):
                    found.append((qualname, type(member).__name__, member.__func__))
                else:   # a function, or a descriptor around one (available_if)
                    func = member if inspect.isfunction(member) else getattr(
                        member, "__wrapped__", None)
                    if inspect.isfunction(func) and not is_compiled(func):
                        found.append((qualname, "method", func))
    return found


def class_members(cls, module_name):
    """[(name, member)] that ``cls`` defines or inherits from a private base defined in
    ``module_name`` (users see those as the class's own; a public base is walked on
    its own)."""
    found = {}   # attribute -> (the class in the MRO that provides it, member)
    for klass in cls.__mro__:
        for attr, member in vars(klass).items():
            found.setdefault(attr, (klass, member))
    return [(attr, member) for attr, (klass, member) in found.items()
            if klass is cls or (klass.__name__.startswith("_")
                                and klass.__module__ == module_name)]


# ---------------------------------------------------------------------- parsing
def parse_docstring(obj, kind):
    """{"Summary": [lines], section: [entry names]}; raises on a malformed docstring."""
    doc = inspect.getdoc(obj.fget if kind == "property" else obj) or ""
    if FunctionDoc is None:
        return simple_parse(doc)
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # unknown sections, bad underlines
        if kind == "class":
            parsed = ClassDoc(obj, doc=doc, config={"show_class_members": False})
        else:
            parsed = FunctionDoc(obj.fget if kind == "property" else obj, doc=doc)
    sections = {"Summary": list(parsed["Summary"])}
    for section in ("Parameters", "Other Parameters", "Returns", "Yields"):
        sections[section] = [p.name or p.type for p in parsed[section]]
    return sections


def simple_parse(doc):
    """What parse_docstring returns, without numpydoc: sections are a title underlined
    with dashes; an entry is a line without indentation ("name : type" or "type")."""
    lines = doc.splitlines()
    sections = {"Summary": []}
    current = "Summary"
    i = 0
    while i < len(lines):
        line = lines[i]
        if i + 1 < len(lines) and line.strip() and re.fullmatch(r"-{3,}", lines[i + 1]):
            current = line.strip()
            if current not in SECTIONS:
                raise ValueError(f"Unknown section {current}")
            if len(lines[i + 1]) != len(current):
                raise ValueError(f"underline of {current} is not its length")
            sections[current] = []
            i += 2
            continue
        if current == "Summary":
            if not line.strip() and sections["Summary"]:
                current = None   # the extended summary follows
            elif line.strip():
                sections["Summary"].append(line)
        elif current is not None and line.strip() and not line[0].isspace():
            sections[current].append(re.split(r"\s:(?:\s|$)", line.strip())[0])
        i += 1
    return sections


def documented_names(entries):
    """Entry names as parameters: "a, b" is two, "*args" is "args"."""
    return [n.strip().lstrip("*") for entry in entries for n in entry.split(",")
            if n.strip()]


# ---------------------------------------------------------------------- the checks
def _constructor(cls):
    """The __init__ whose parameters the class documents, or None when it is not this
    package's (an exception's, object's)."""
    init = cls.__init__
    package = cls.__module__.split(".")[0]
    if inspect.isfunction(init) and init.__module__.split(".")[0] == package:
        return init
    return None


def problems_of(qualname, kind, obj):
    """What is wrong with the docstring and annotations of one object (a list)."""
    try:
        doc = parse_docstring(obj, kind)
    except Exception as exc:   # numpydoc's errors and warnings
        return [f"{qualname}: docstring does not parse: {exc}"]
    found = []
    if len(doc["Summary"]) != 1:
        found.append(f"{qualname}: needs a one-line summary, got {doc['Summary']}")
    if kind == "property":
        if inspect.signature(obj.fget).return_annotation is inspect.Signature.empty:
            found.append(f"{qualname}: no return annotation")
        return found
    func = _constructor(obj) if kind == "class" else obj
    if func is None:
        return found
    signature = inspect.signature(func)
    params = list(signature.parameters.values())
    if kind in ("method", "classmethod") or kind == "class":
        params = params[1:]   # self, cls
    names = [p.name for p in params]
    given = documented_names(doc.get("Parameters", []) + doc.get("Other Parameters", []))
    missing = [n for n in names if n not in given]
    extra = [n for n in given if n not in names]
    if missing:
        found.append(f"{qualname}: parameters not documented: {missing}")
    if extra:
        found.append(f"{qualname}: documents parameters it does not have: {extra}")
    unannotated = [p.name for p in params if p.annotation is inspect.Parameter.empty]
    if unannotated:
        found.append(f"{qualname}: parameters without annotation: {unannotated}")
    returns = signature.return_annotation
    if returns is inspect.Signature.empty:
        found.append(f"{qualname}: no return annotation"
                     + (" (__init__ -> None)" if kind == "class" else ""))
    elif kind != "class":
        says_none = returns is None or returns == "None"
        has_returns = bool(doc.get("Returns") or doc.get("Yields"))
        if not says_none and not has_returns:
            found.append(f"{qualname}: no Returns section (returns {returns})")
        if says_none and has_returns:
            found.append(f"{qualname}: a Returns section but annotated -> None")
    return found


def unchecked_re_exports(module, modules=None):
    """The public names ``module`` re-exports whose defining module no entry of
    ``modules`` (default MODULES) checks, as "name (from module)"."""
    entries = [entry.partition(":") for entry in (MODULES if modules is None else modules)]
    names = getattr(module, "__all__", None) or [
        n for n in vars(module) if not n.startswith("_")]
    unchecked = []
    for name in names:
        obj = getattr(module, name)
        owner = getattr(obj, "__module__", None)
        if not (inspect.isfunction(obj) or inspect.isclass(obj)) or is_compiled(obj) \
                or owner == module.__name__:
            continue
        if not any(owner == m and (not only or name in only.split(","))
                   for m, _, only in entries):
            unchecked.append(f"{name} (from {owner})")
    return unchecked


def public_names(module):
    """``module.__all__``, else its names that do not start with "_"."""
    return getattr(module, "__all__", None) or [
        n for n in vars(module) if not n.startswith("_")]


def unchecked_names(module, modules=None, _seen=None):
    """The public names of ``module`` that no entry of ``modules`` (default MODULES)
    checks: functions and classes where they are defined (under the name they have
    there), modules as a whole; a package that no entry checks whole counts name by
    name ("package.name"). Only what ``module``'s own package defines counts, and no
    constants; a module (not a package) without ``__all__`` exports only what it
    defines, not the helpers it imports."""
    modules = MODULES if modules is None else modules
    entries = [entry.partition(":") for entry in modules]
    whole = {m for m, _, only in entries if not only}
    package = module.__name__.split(".")[0]
    own_only = not hasattr(module, "__all__") and not hasattr(module, "__path__")
    seen = set() if _seen is None else _seen
    seen.add(module.__name__)
    unchecked = []
    for name in public_names(module):
        obj = getattr(module, name)
        owner = obj.__name__ if inspect.ismodule(obj) else getattr(obj, "__module__", None)
        if not isinstance(owner, str) or owner.split(".")[0] != package or (
                own_only and owner != module.__name__):
            continue
        if inspect.ismodule(obj):
            if obj.__name__ in whole or obj.__name__ in seen:
                continue
            if hasattr(obj, "__path__"):   # a package: its names one by one
                unchecked += [f"{name}.{n}" for n in unchecked_names(obj, modules, seen)]
            else:
                unchecked.append(f"{name} (module {obj.__name__})")
        elif (inspect.isfunction(obj) or inspect.isclass(obj)) and not is_compiled(obj):
            own_name = obj.__name__
            if not any(owner == m and (not only or own_name in only.split(","))
                       for m, _, only in entries):
                unchecked.append(f"{name} (from {owner})")
    return unchecked


def api_problems(module, names=None):
    """Every problem of ``module``'s public API, one line each (empty: all fine)."""
    return [p for qualname, kind, obj in public_api(module, names)
            for p in problems_of(f"{module.__name__}.{qualname}", kind, obj)]


def _import(entry):
    name, _, only = entry.partition(":")
    try:
        module = importlib.import_module(name)
    except ImportError as exc:
        if name.startswith("fastdnn.cuda"):   # numba-cuda is optional
            pytest.skip(f"{name} needs numba-cuda: {exc}")
        raise
    return module, (only.split(",") if only else None)


@pytest.mark.parametrize("entry", MODULES)
def test_public_api_is_documented_and_annotated(entry):
    module, names = _import(entry)
    api = public_api(module, names)
    if not api and names is None and hasattr(module, "__path__"):
        unchecked = unchecked_re_exports(module)   # a package of re-exports
        assert not unchecked, f"{entry} re-exports names no entry checks: {unchecked}"
        return
    assert api, f"{entry}: nothing public found to check"
    if names is not None:
        assert sorted(q for q, _, _ in api if "." not in q) == sorted(names)
    problems = api_problems(module, names)
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems)


@pytest.mark.parametrize("namespace", PUBLIC_NAMESPACES)
def test_every_public_name_is_checked(namespace):
    module = importlib.import_module(namespace)
    unchecked = unchecked_names(module)
    assert not unchecked, (f"{namespace} exports names that no entry of MODULES checks "
                           f"(add their modules): {unchecked}")


# ---------------------------------------------------------------------- the checker
_SAMPLE = '''
from __future__ import annotations
import functools

import numba

from fastdnn.reference.dense import dense_forward   # a re-export: not walked


def good(x: int, *rest: int, scale: float = 1.0) -> float:
    """Scale the sum.

    Parameters
    ----------
    x, *rest : int
        The terms.
    scale : float
        The factor.

    Returns
    -------
    float
    """
    return scale * (x + sum(rest))


def quiet(x: int) -> None:
    """Do nothing with x.

    Parameters
    ----------
    x : int
        Ignored.
    """


def bad(x, y: int) -> int:
    """Add.
    Two lines of summary.

    Parameters
    ----------
    x : int
        One.
    z : int
        Not a parameter.
    """
    return x + y


def noisy(x: int) -> None:
    """Return nothing.

    Parameters
    ----------
    x : int
        Ignored.

    Returns
    -------
    None
    """


def misspelt(x: int) -> int:
    """Misspell a section.

    Params
    ------
    x : int
        One.
    """
    return x


@numba.njit
def compiled(x):
    return x


class Thing:
    """A thing.

    Parameters
    ----------
    size : int
        How big.
    """

    def __init__(self, size: int) -> None:
        self.size = size

    def grow(self, by):
        return self.size + by

    @property
    def area(self) -> int:
        """The area."""
        return self.size ** 2

    def __call__(self) -> int:
        """The size.

        Returns
        -------
        int
        """
        return self.size


class _Shared:
    def shared(self) -> int:
        """What Child inherits, walked as its own.

        Returns
        -------
        int
        """
        return 1


class _Wrapping:
    """A descriptor around a method, as scikit-learn's available_if."""

    def __init__(self, fn):
        functools.update_wrapper(self, fn)

    def __get__(self, obj, owner=None):
        return self.__wrapped__.__get__(obj, owner)


class Child(_Shared):
    """A class with a private base."""

    @_Wrapping
    def wrapped(self, y):
        return y
'''


@pytest.fixture(scope="module")
def sample():
    module = types.ModuleType("fastdnn_api_docs_sample")
    exec(compile(_SAMPLE, "<sample>", "exec"), vars(module))   # defines them there
    return module


def test_the_walk_skips_compiled_functions_and_re_exports(sample):
    walked = {q: kind for q, kind, _ in public_api(sample)}
    assert walked == {"good": "function", "quiet": "function", "bad": "function",
                      "noisy": "function", "misspelt": "function", "Thing": "class",
                      "Thing.grow": "method", "Thing.area": "property",
                      "Thing.__call__": "method", "Child": "class",
                      "Child.shared": "method", "Child.wrapped": "method"}
    assert is_compiled(sample.compiled) and not is_compiled(sample.good)


def test_re_exports_count_as_checked_where_they_are_defined(sample):
    assert unchecked_re_exports(sample) == []   # fastdnn.reference.dense is in MODULES
    assert unchecked_re_exports(sample, ["fastdnn.reference.dense:dense_backward"]) == [
        "dense_forward (from fastdnn.reference.dense)"]


def test_the_checks_find_each_fault(sample):
    problems = "\n".join(api_problems(sample))
    for ok in ("good", "quiet", "Thing", "Thing.area", "Thing.__call__", "Child",
               "Child.shared"):
        assert f".{ok}:" not in problems
    bad = [p for p in api_problems(sample) if ".bad:" in p]
    assert any("one-line summary" in p for p in bad)
    assert any("not documented: ['y']" in p for p in bad)
    assert any("does not have: ['z']" in p for p in bad)
    assert any("without annotation: ['x']" in p for p in bad)
    assert any("no Returns section" in p for p in bad)
    assert "noisy: a Returns section but annotated -> None" in problems
    assert "misspelt: docstring does not parse" in problems
    grow = [p for p in api_problems(sample) if "Thing.grow" in p]
    assert len(grow) == 4   # summary, parameter, its annotation, return annotation
    assert len([p for p in api_problems(sample) if "Child.wrapped" in p]) == 4


def test_unchecked_names_finds_functions_classes_and_modules():
    import fastdnn.reference as reference
    import fastdnn.reference.dense as dense
    namespace = types.ModuleType("fastdnn.api_docs_namespace")   # in the package
    namespace.__all__ = ["forward", "dense", "reference", "VERSION"]
    namespace.forward = dense.dense_forward   # checked under the name it is defined by
    namespace.dense, namespace.reference, namespace.VERSION = dense, reference, "1.0"
    assert unchecked_names(namespace) == []
    fewer = [m for m in MODULES if m not in ("fastdnn.reference", "fastdnn.reference.dense")]
    assert sorted(unchecked_names(namespace, fewer)) == sorted([
        "forward (from fastdnn.reference.dense)", "dense (module fastdnn.reference.dense)",
        "reference.dense_forward (from fastdnn.reference.dense)",
        "reference.dense_backward (from fastdnn.reference.dense)",
        "reference.dense (module fastdnn.reference.dense)"])


def test_the_fallback_parser_agrees_with_numpydoc():
    pytest.importorskip("numpydoc")
    for entry in MODULES:
        name, _, only = entry.partition(":")
        try:
            module = importlib.import_module(name)
        except ImportError:   # fastdnn.cuda without numba-cuda
            continue
        for qualname, kind, obj in public_api(module, only.split(",") if only else None):
            doc = inspect.getdoc(obj.fget if kind == "property" else obj) or ""
            ours, theirs = simple_parse(doc), parse_docstring(obj, kind)
            for section in ("Parameters", "Other Parameters", "Returns", "Yields"):
                assert documented_names(ours.get(section, [])) == \
                    documented_names(theirs.get(section, [])), (qualname, section)
            assert ours["Summary"] == theirs["Summary"], qualname
