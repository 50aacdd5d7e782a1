"""netspec's benchmarks: run on demand, never as timed tests (see docs/performance.md)."""
