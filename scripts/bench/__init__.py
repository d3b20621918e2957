"""Helpers of scripts/bench_fanout.py: processes, publisher, subscribers, statistics and the peer servers."""
