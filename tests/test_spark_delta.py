"""The session builder gives real Delta Lake, and table writes replace rather than append."""
from core.tables import read_table, table_version, write_table
from core.stats import RunStats, latest_run


def test_delta_overwrite_replaces_and_versions(spark, tmp_path):
    path = str(tmp_path / "t")
    assert table_version(spark, path) is None
    write_table(spark.range(10), path)
    write_table(spark.range(10), path)  # re-run: replaced, not appended
    assert read_table(spark, path).count() == 10
    assert table_version(spark, path) == 1
    assert read_table(spark, path, version=0).count() == 10
    from delta.tables import DeltaTable   # the snapshot's version agrees with the table history
    assert DeltaTable.forPath(spark, path).history(1).first()["version"] == 1
    plain = str(tmp_path / "plain")
    spark.range(3).write.parquet(plain)
    assert table_version(spark, plain) is None     # a Parquet folder is not a Delta table


def test_stats_table_records_each_run(spark, tmp_path):
    path = str(tmp_path / "stats")
    for n in (3, 5):
        st = RunStats("demo", config_hash="abc")
        st.add("records", n)
        st.add("rejected.bad", 1)
        st.record(spark, path, echo=False)
    last = latest_run(spark, path, "demo")
    assert last["records"] == 5 and last["rejected.bad"] == 1 and "seconds" in last
