"""The analysis report: matplotlib figures, report.md and a self-contained report.html."""
