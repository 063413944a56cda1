"""Decontamination: remove registered evaluation-set text (evalsets/) from training documents by
n-gram overlap. `ngrams.py` is the engine-free logic; `stage.py` the Spark wiring (`run_decontaminate`)."""
