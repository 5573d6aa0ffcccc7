"""Time-driven work: the scheduler's sweeps, digests, housekeeping."""
