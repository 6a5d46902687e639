"""Metrics and benchmarks against ground truth (FAIR protocol, image metrics, identity)."""
