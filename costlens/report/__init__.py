"""Rendering: one module per output format; nothing here counts."""
