"""The pipeline's HTML report: `build_report(spark, pipeline_config, out_html)` writes
`<work_dir>/report/index.html` and its PNG plots (static files; open in any browser)."""
from pipeline.report.build import build_report, collect

__all__ = ["build_report", "collect"]
