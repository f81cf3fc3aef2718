"""Measured time: end-to-end latency, per-layer time, device peaks and the roofline.

Counting (``costlens.count``) runs on the meta device and needs no weights; timing
builds the model with real (random) weights on the device it times. The measured
values enter the profile through the metric catalogue (``costlens/metrics.py``), so
tables, JSON, comparisons, budgets and pages show them like any other metric.
"""
