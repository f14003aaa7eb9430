"""Benchmarks of the engine (not part of the test suite); see BENCHMARKS.md."""
