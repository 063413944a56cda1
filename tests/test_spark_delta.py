"""The session builder gives real Delta Lake, and table writes replace rather than append."""
import pytest

from core.tables import OutputRefused, read_table, table_properties, table_version, write_table
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
    assert table_properties(spark, path)["curation.job"] == "stats"     # the ownership marker


def test_stats_go_only_to_a_stats_table(spark, tmp_path):
    """A job appends its counters only to a stats table of this project: a Delta table some other
    tool made, or another job's output, is refused (naming the table and its owner) and left as it
    was, unless overwrite, which replaces it with a stats table that later runs append to."""
    theirs, deduped = str(tmp_path / "theirs"), str(tmp_path / "deduped")
    spark.range(3).write.format("delta").save(theirs)
    write_table(spark.range(2), deduped, job="dedup")
    st = RunStats("demo")
    st.add("records", 1)
    with pytest.raises(OutputRefused, match=r"theirs: it holds a Delta table \(version 0\) not "
                                            r"written by this project.*ALTER TABLE"):
        st.record(spark, theirs, echo=False)
    with pytest.raises(OutputRefused, match=r"deduped: it holds a Delta table \(version 0\) "
                                            r"written by the 'dedup' job"):
        st.claim(spark, deduped)
    with pytest.raises(OutputRefused, match="deduped"):
        st.record(spark, deduped, echo=False)
    assert read_table(spark, theirs).columns == ["id"] and read_table(spark, theirs).count() == 3
    assert read_table(spark, deduped).columns == ["id"] and table_version(spark, deduped) == 0

    st.claim(spark, theirs, overwrite=True)
    st.record(spark, theirs, echo=False)
    RunStats("demo2", counters={"records": 2}).record(spark, theirs, echo=False)
    assert table_properties(spark, theirs)["curation.job"] == "stats"
    assert "id" not in read_table(spark, theirs).columns
    assert latest_run(spark, theirs, "demo")["records"] == 1
    assert latest_run(spark, theirs, "demo2")["records"] == 2
