"""Shared fixtures: profiles of zoo models, computed once per test session."""

from __future__ import annotations

import functools

import pytest

from costlens.api import profile
from costlens.profile import Profile


@functools.lru_cache(maxsize=None)
def cached_profile(name: str, device: str = "meta") -> Profile:
    """Profiles are pure data: share them between tests instead of re-tracing."""
    return profile(name, device=device)


@pytest.fixture
def zoo_profile():  # type: ignore[no-untyped-def]
    return cached_profile
