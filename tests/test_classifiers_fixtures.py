"""Shared fixtures for the classifier and score tests: small real fastText models trained once per
test session from the sample corpus (seconds), into a temporary folder. No tests here.

Both test modules import `small_models`; pytest then holds one fixture definition per module, so
the models themselves are memoised here to be trained only once per process."""
from __future__ import annotations

import pytest

_TRAINED: dict = {}


@pytest.fixture(scope="session")
def small_models(tmp_path_factory, corpus):
    """(quality FastTextModel, domain FastTextModel, {kind: held-out examples})."""
    if "models" not in _TRAINED:
        from classifiers import recipes
        from classifiers.train import train_domain, train_quality
        root = tmp_path_factory.mktemp("models")
        q_ex = recipes.quality_default(corpus, limit=80)
        d_ex = recipes.domain_default(corpus, limit=150)
        q = train_quality(q_ex, root / "quality")
        d = train_domain(d_ex, root / "domain")
        held = {"quality": recipes.split(q_ex)[1], "domain": recipes.split(d_ex)[1]}
        _TRAINED["models"] = (q, d, held)
    return _TRAINED["models"]
