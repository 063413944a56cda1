"""spark-submit entry points: each job parses arguments, builds the session and calls one library
function (the same one the notebooks and the pipeline call)."""
