"""The HTML report of experiments, runs, searches and KG builds: a leaf package.

Nothing else in graphrec imports it except the entry points that write a report (the
``report`` command, ``experiment --report`` and the pipeline).  It reads what the rest of
the house produced and renders it:

* :mod:`~graphrec.reporting.inputs` — recognise paths, group runs (or take a result and a
  split handed over by the job that just made them);
* :mod:`~graphrec.reporting.analysis` — per-run metric@K, long-tail and sparse-user analyses
  from the best checkpoint (cached beside the run);
* :mod:`~graphrec.reporting.explanations` — the best run's explained recommendations;
* :mod:`~graphrec.reporting.sections`, :mod:`~graphrec.reporting.plots`,
  :mod:`~graphrec.reporting.html` — the page: sections, SVG figures, markup;
* :mod:`~graphrec.reporting.report` — :func:`write_report` / :func:`save_report`;
* :mod:`~graphrec.reporting.browser` — open the page in headless Chromium
  (``evaluate.py report --check`` and the report's test).

matplotlib is an optional dependency (``pip install graphrec[experiment]``), imported only
when a figure is drawn.
"""

from graphrec.reporting.inputs import ReportInputs, collect_inputs
from graphrec.reporting.report import build_report, save_report, write_report

__all__ = ["ReportInputs", "build_report", "collect_inputs", "save_report", "write_report"]
