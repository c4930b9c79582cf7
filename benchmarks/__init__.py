"""Benchmarks: one command each (`python -m benchmarks.<name>`), a table on stdout, figures in JSON.

They measure; they assert nothing. Each writes `benchmarks/results/<name>.json` with the machine, the
settings, every run and the medians, so a later run can be compared figure by figure.
"""

import warnings

# Dagster flags the beta/preview APIs the code location uses on every import; benchmarks print tables.
warnings.filterwarnings("ignore", message=r".*(currently in beta|currently in preview).*")
