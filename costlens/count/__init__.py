"""Counting: op formulas, the tracer, and fvcore's second opinion."""
