"""What a run measures: clocks, counts, throughput and environment; speed paths; adversarial robustness; agreement of a
rerun with the committed records."""
