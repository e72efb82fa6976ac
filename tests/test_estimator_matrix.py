"""Coverage by variation: every test instance x target kinds x string options round-trips.

The cases come from ``_variations`` (derived from scikit-learn's tags and parameter
constraints, not hand-listed). One test per estimator loops over its cases and reports
every failing case at once, so the matrix costs ~230 pytest items rather than ~1,600.
Each case is loaded with the default, safe options and compared output by output, bit
for bit, with types and dtypes.
"""

from __future__ import annotations

import pytest
from _sklearn_cases import instance_id, sklearn_instances
from _variations import Outcome, run_estimator

# Fits scikit-learn refuses (incompatible combinations) are counted, not failures; past
# these fractions the matrix would be shrinking without anyone noticing.
MAX_UNFITTABLE_PER_ESTIMATOR = 0.9
MAX_UNFITTABLE_OVERALL = 0.2
MIN_CASES_PER_ESTIMATOR = 5  # on average: 1,581 cases for 228 instances on 1.9.1

_OUTCOMES: dict[str, Outcome] = {}


@pytest.mark.parametrize("estimator", sklearn_instances(), ids=instance_id)
def test_every_variation_round_trips(estimator):
    name = instance_id(estimator)
    outcome = run_estimator(estimator, name)
    _OUTCOMES[name] = outcome
    assert not outcome.failures, (
        f"{len(outcome.failures)} of {outcome.cases} cases fail:\n" + "\n".join(outcome.failures)
    )
    fitted = outcome.cases - len(outcome.unfittable)
    assert fitted >= 1, f"no case could be fitted: {outcome.unfittable}"
    assert len(outcome.unfittable) <= MAX_UNFITTABLE_PER_ESTIMATOR * outcome.cases, (
        "scikit-learn refused most cases (the data or parameters no longer suit it): "
        + ", ".join(outcome.unfittable)
    )


def test_matrix_did_not_shrink(request):
    """Runs after the estimators (file order); checks the totals of a complete run."""
    expected = {instance_id(est) for est in sklearn_instances()}
    selected = {
        item.callspec.id
        for item in request.session.items
        if item.originalname == "test_every_variation_round_trips"
    }
    if selected != expected:
        pytest.skip("only part of the matrix was selected")
    assert set(_OUTCOMES) == expected, "some estimators did not run (failed early?)"
    cases = sum(o.cases for o in _OUTCOMES.values())
    unfittable = sum(len(o.unfittable) for o in _OUTCOMES.values())
    assert cases >= MIN_CASES_PER_ESTIMATOR * len(expected), cases
    assert unfittable <= MAX_UNFITTABLE_OVERALL * cases, (
        f"{unfittable} of {cases} cases could not be fitted"
    )
