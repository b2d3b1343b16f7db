"""Rules both engines share (insights.md "Common rules"): property filters, breakdown values,
ranking, range buckets and quantiles. Imports neither engine; both engines import it."""
