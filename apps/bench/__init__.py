"""Benchmark campaigns: a suite's grid of attack cells, run in parallel into a results store."""
