"""convbench: a benchmark harness and static leaderboard for alternatives to the convolution layer."""

__version__ = "0.1.0"
RECORD_SCHEMA = 1
