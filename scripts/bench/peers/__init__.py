"""Peer servers measured against the hub by scripts/bench_fanout.py (same workload, same harness)."""
