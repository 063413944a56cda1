"""The ground floor every stage stands on: config loading, project paths, run statistics, the Spark
session, Delta table helpers, table schemas and the notebook runner. Imports no stage package
(curation, classifiers, mixer, trainer, pipeline, jobs); importing `core` itself imports no pyspark."""
