"""The variation matrix: each scikit-learn test instance x its target kinds x string options.

For every estimator of scikit-learn's test instance generator this module derives, from
the estimator itself rather than from a hand-kept list:

- the *target kinds* it accepts, read from its tags (``sklearn.utils.get_tags``): binary,
  multiclass, string labels and multilabel for classifiers; single and multi-output for
  regressors; ``sample_weight`` wherever ``fit`` takes one; class labels for the other
  estimators (the unsupervised ones ignore them);
- the *string options* of its parameters, read from its ``_parameter_constraints``
  (every ``StrOptions`` option that is not deprecated; ``Hidden`` ones are internal):
  losses, criteria, solvers, kernels, metrics, algorithms, splitters, penalties...
  Each option is fitted once, one parameter at a time, on the estimator's richest
  target kind (multiclass for classifiers, since multiclass is what switches many of
  them to other loss and tree types).

``scoring`` is the exception to "every option": its ~50 scorer names, times the ~25
search and CV estimators that take it, would be 1,200 cross-validated fits. Each
estimator gets a fixed slice of the scorer names made for its kind of target (a
regression scorer for a search over a regressor...), so that every scorer name is still
fitted by a few estimators.

A fit that raises (an incompatible solver and penalty, a scorer that needs
probabilities...) is scikit-learn refusing the combination, not a devpersist failure:
such cases are counted and reported, never hidden.
"""

from __future__ import annotations

import pickle
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from _compare import as_numpy, assert_identical
from _sklearn_cases import fit_special_input, outputs

import devpersist

N_SAMPLES = 36
N_FEATURES = 4
# How many estimators taking ``scoring`` fit each scorer name (see the module docstring).
SCORING_SLICES = 6


@dataclass
class Case:
    """One fit of one estimator: which target kind, which parameter value."""

    label: str
    params: dict[str, Any] = field(default_factory=dict)
    target: str = "default"


@dataclass
class Outcome:
    """What the matrix did with one estimator."""

    name: str
    cases: int = 0
    unfittable: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    # Outputs that differ in the last bits after *pickle's* round trip too (BLAS results
    # depend on the alignment of their inputs, which no serializer controls): these must
    # match pickle's round trip bit for bit, or the original to 1e-12; listed here.
    tolerated: list[str] = field(default_factory=list)


def _str_options(est: Any) -> Iterator[tuple[str, str]]:
    """(parameter, option) pairs from ``_parameter_constraints``, default value excluded."""
    from sklearn.utils._param_validation import StrOptions

    constraints = getattr(type(est), "_parameter_constraints", {})
    current = est.get_params(deep=False)
    scorer_names: list[str] = []
    for param, allowed in sorted(constraints.items()):
        if param not in current:
            continue
        for constraint in allowed:
            if not isinstance(constraint, StrOptions):
                continue  # Hidden(StrOptions(...)) is internal by definition
            options = constraint.options - constraint.deprecated
            for option in sorted(options):
                if option == current[param]:
                    continue
                if param == "scoring":
                    scorer_names.append(option)
                else:
                    yield param, option
    if scorer_names:
        # Only the scorers made for the estimator's kind of target; a stable slice of them
        # per estimator class, so that they spread over the estimators taking ``scoring``.
        scorer_names = [s for s in scorer_names if _scorer_fits(est, s)]
        offset = sum(map(ord, type(est).__name__)) % SCORING_SLICES
        for option in scorer_names[offset::SCORING_SLICES]:
            yield "scoring", option


def _scorer_fits(est: Any, scoring: str) -> bool:
    """Whether a scorer's metric is of the kind ``est`` (or its inner estimator) predicts."""
    from sklearn.base import is_classifier, is_regressor
    from sklearn.metrics import get_scorer

    module = get_scorer(scoring)._score_func.__module__
    kinds = [est] + [e for e in [getattr(est, "estimator", None)] if e is not None]
    if any(map(is_regressor, kinds)):
        return module.endswith("_regression")
    if any(map(is_classifier, kinds)):
        return not module.endswith("_regression")
    return True


def target_kinds(est: Any) -> list[str]:
    """The target kinds ``est`` accepts, from its tags."""
    from sklearn.utils import get_tags
    from sklearn.utils.validation import has_fit_parameter

    tags = get_tags(est)
    kinds: list[str]
    if tags.estimator_type == "classifier":
        if not tags.target_tags.single_output:
            kinds = ["multilabel"]  # MultiOutputClassifier, ClassifierChain
        elif tags.classifier_tags is not None and not tags.classifier_tags.multi_class:
            kinds = ["binary", "binary strings"]  # the threshold classifiers
        else:
            kinds = ["binary", "multiclass", "strings"]
            if tags.classifier_tags is not None and tags.classifier_tags.multi_label:
                kinds.append("multilabel")
    elif tags.estimator_type == "regressor":
        kinds = ["continuous"] if tags.target_tags.single_output else []
        if tags.target_tags.multi_output:
            kinds.append("multioutput")
    else:
        # Transformers, clusterers, outlier detectors: given class labels as y, which the
        # unsupervised ones ignore and the supervised ones (feature selectors, NCA,
        # PLSSVD...) need although their tags do not always say so.
        kinds = ["labels"]
    if has_fit_parameter(est, "sample_weight"):
        kinds.append(kinds[0] + "+sample_weight")
    return kinds


def cases(est: Any) -> list[Case]:
    """Every case of the matrix for one estimator."""
    from sklearn.utils import get_tags

    if not get_tags(est).input_tags.two_d_array:
        return [Case("special input")]  # text, dicts, labels, images: one fixed fit
    kinds = target_kinds(est)
    richest = "multiclass" if "multiclass" in kinds else kinds[0]
    result = [Case(f"target={kind}", target=kind) for kind in kinds]
    for param, option in _str_options(est):
        result.append(Case(f"{param}={option!r}", {param: option}, richest))
    return result


def _data(est: Any, target: str) -> tuple[Any, Any, dict[str, Any]]:
    """Small seeded data for ``target``, shaped by the estimator's tags as sklearn does."""
    from sklearn.metrics.pairwise import rbf_kernel
    from sklearn.utils import get_tags
    from sklearn.utils.estimator_checks import _enforce_estimator_tags_X

    rng = np.random.RandomState(0)
    dictionary = getattr(est, "dictionary", None)  # SparseCoder fixes the feature count
    n_features = N_FEATURES if dictionary is None else np.shape(dictionary)[1]
    X = rng.normal(size=(N_SAMPLES, n_features))
    kind, _, weighted = target.partition("+")
    labels = np.arange(N_SAMPLES) % 3
    X[:, 0] += labels  # learnable, so that no solver gives up on noise
    if kind == "binary":
        y: Any = labels % 2
    elif kind == "multiclass":
        y = labels
    elif kind == "strings":
        y = np.array(["cat", "dog", "bird"])[labels]
    elif kind == "binary strings":
        y = np.array(["cat", "dog"])[labels % 2]
    elif kind == "multilabel":
        y = np.stack([labels == 0, labels != 1, X[:, 1] > 0], axis=1).astype(int)
    elif kind == "continuous":
        y = X @ np.arange(1, n_features + 1) + rng.normal(size=N_SAMPLES)
    elif kind == "multioutput":
        y = np.stack([X[:, 0] + X[:, 1], X[:, 1] - X[:, 0]], axis=1)
    else:  # "labels"
        y = labels
    X = _enforce_estimator_tags_X(est, X, kernel=rbf_kernel)
    tags = get_tags(est)
    if kind in ("continuous", "multioutput") and tags.target_tags.positive_only:
        y = np.abs(y) + 1
    if tags.input_tags.allow_nan:
        X.reshape(-1)[rng.choice(X.size, 6, replace=False)] = np.nan
    fit_params = {}
    if weighted:
        fit_params["sample_weight"] = rng.uniform(0.5, 2.0, size=N_SAMPLES)
    return X, y, fit_params


def fit_case(est: Any, case: Case) -> tuple[Any, Any]:
    """Fit a clone of ``est`` for ``case``; return it and the X to predict on."""
    from sklearn.base import clone
    from sklearn.utils._testing import set_random_state

    if case.label == "special input":
        return fit_special_input(est)
    fitted = clone(est).set_params(**case.params)
    X, y, fit_params = _data(fitted, case.target)
    set_random_state(fitted)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted.fit(X, y, **fit_params)
    return fitted, X


def _same(a: Any, b: Any, method: str) -> bool:
    """Bit for bit (with types and dtypes) or not; raises on a type or shape change."""
    if isinstance(a, list):  # multilabel predict_proba: one array per label
        assert isinstance(b, list) and len(a) == len(b), f"{method}: list changed"
        return all(_same(x, y, f"{method}[{i}]") for i, (x, y) in enumerate(zip(a, b)))
    try:
        assert_identical(a, b, method)
    except AssertionError as exc:
        if "bits differ" not in str(exc):
            raise
        return False
    return True


def compare_outputs(
    fitted: Any, X: Any, before: dict[str, Any], after: dict[str, Any]
) -> list[str]:
    """Assert ``after`` is ``before`` bit for bit; return the methods let through at 1e-12.

    A method whose output also changes in its last bits after pickle's own round trip
    must give pickle's bits, or be within ``rtol=1e-12`` (see ``Outcome.tolerated``).
    """
    assert before.keys() == after.keys(), f"methods {sorted(before)} != {sorted(after)}"
    tolerated = []
    pickled: dict[str, Any] | None = None
    for method, value in before.items():
        if _same(value, after[method], method):
            continue
        if pickled is None:
            pickled = outputs(pickle.loads(pickle.dumps(fitted)), X)
        if _same(value, pickled[method], method):
            raise AssertionError(f"{method}: bits differ (pickle keeps them)")
        tolerated.append(method)
        if _same(pickled[method], after[method], method):
            continue  # the very bits pickle's round trip gives
        a, b = _as_arrays(value), _as_arrays(after[method])
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-15, err_msg=method)
    return tolerated


def _as_arrays(value: Any) -> Any:
    if isinstance(value, list):
        return np.stack([as_numpy(v) for v in value])
    return as_numpy(value)


def run_estimator(est: Any, name: str) -> Outcome:
    """Every case of one estimator: fit, dumps, default loads, compare outputs."""
    outcome = Outcome(name)
    for case in cases(est):
        outcome.cases += 1
        try:
            fitted, X = fit_case(est, case)
        except Exception as exc:  # scikit-learn refused the combination
            outcome.unfittable.append(f"{case.label}: {type(exc).__name__}")
            continue
        try:
            before = outputs(fitted, X)
            loaded = devpersist.loads(devpersist.dumps(fitted))  # default, safe options
            assert type(loaded) is type(fitted), f"{type(loaded)} != {type(fitted)}"
            tolerated = compare_outputs(fitted, X, before, outputs(loaded, X))
            outcome.tolerated += [f"{case.label}: {method}" for method in tolerated]
        except Exception as exc:
            outcome.failures.append(f"{case.label}: {type(exc).__name__}: {exc}"[:600])
    return outcome
