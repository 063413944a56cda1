"""Shared fixtures for the classifier and score tests: small real fastText models trained once per
test session from the sample corpus (seconds), into a temporary folder. No tests here."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def small_models(tmp_path_factory, corpus):
    """(quality FastTextModel, domain FastTextModel, {kind: held-out examples})."""
    from classifiers import recipes
    from classifiers.train import train_domain, train_quality
    root = tmp_path_factory.mktemp("models")
    q_ex = recipes.quality_default(corpus, limit=80)
    d_ex = recipes.domain_default(corpus, limit=150)
    hp = {"epoch": 8, "bucket": 50_000, "dim": 16}
    q = train_quality(q_ex, root / "quality", hyperparameters=hp)
    d = train_domain(d_ex, root / "domain", hyperparameters=hp)
    held = {"quality": recipes.split(q_ex)[1], "domain": recipes.split(d_ex)[1]}
    return q, d, held
