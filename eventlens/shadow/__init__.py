"""Shadow mode (issue 5): run a candidate engine beside the primary on live queries, compare,
record every discrepancy, and report whether the candidate is ready for the cut-over.

    compare.compare(kind, primary_result, candidate_result) -> [Diff(path, expected, got)]
    runner.ShadowRunner      the live dual-run (bounded pool, own deadline, load shedding)
    wiring                   attaches the runner to a QueryService as an observer
    store.ShadowStore        durable comparisons, discrepancy records, known-difference rules
    report.build_report      match rate, outcomes, latency, cut-over verdict
    replay                   re-run a record or a production query log offline
    bench.run_bench          the primary's latency with shadow mode off vs at 100%

Guide: docs/shadow-mode.md; decisions: docs/adr/0005-shadow-mode.md.
"""

# The public surface: the modules other components may import.
__all__ = ["bench", "compare", "replay", "report", "runner", "store", "wiring"]
