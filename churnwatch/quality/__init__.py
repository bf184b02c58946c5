"""Data quality with Great Expectations: suites derived from ``schemas/*.avsc``.

* ``rules``: the business rules the schemas cannot express (``churnwatch/policy/quality.yaml``);
* ``suites``: expectation *specs* (plain dataclasses) from a table spec plus the rules,
  testable without importing Great Expectations;
* ``results``: flattening validation results to ``quality_results`` rows and
  ``DATA_QUALITY`` alerts (pure);
* ``gx_runner``: the only module that imports Great Expectations (lazily; it is slow to
  import and prints progress bars unless told not to).
"""
