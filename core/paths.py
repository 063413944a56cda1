"""Where things live: the project root, the sample corpus, the Delta jars."""
from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def corpus_dir() -> Path:
    """The sample corpus: $CURATION_CORPUS, else ../shared/corpus beside the project."""
    env = os.environ.get("CURATION_CORPUS")
    return Path(env) if env else (PROJECT_ROOT.parent / "shared" / "corpus").resolve()


def jars_dir() -> Path:
    """Delta Lake jars fetched by setup/install.sh: $CURATION_JARS, else <project>/.jars."""
    env = os.environ.get("CURATION_JARS")
    return Path(env) if env else PROJECT_ROOT / ".jars"
