"""Shared fixtures: profiles of zoo models, computed once per test session."""

from __future__ import annotations

import functools

import pytest

from costlens.api import profile
from costlens.records import Profile


@functools.cache
def cached_profile(name: str, device: str = "meta") -> Profile:
    """Profiles are pure data: share them between tests instead of re-tracing."""
    return profile(name, device=device)


@pytest.fixture
def zoo_profile():  # type: ignore[no-untyped-def]
    return cached_profile


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run"]


def _install_chromium() -> str | None:
    """Install Debian's chromium when missing; the reason it cannot be had, or None."""
    import os
    import shutil
    import subprocess

    if os.path.exists(CHROMIUM):
        return None
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        return "chromium is not installed and apt-get cannot install it here (needs Debian and root)"
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        done = subprocess.run(command, capture_output=True, text=True, timeout=600,
                              env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        if done.returncode != 0:
            return f"'{' '.join(command)}' failed: {done.stderr.strip().splitlines()[-1:]}"
    return None if os.path.exists(CHROMIUM) else "chromium installed but /usr/bin/chromium is missing"


@pytest.fixture(scope="session")
def browser():  # type: ignore[no-untyped-def]
    """Headless Debian chromium driven by playwright; skips, saying why, if it cannot run."""
    reason = _install_chromium()
    if reason:
        print(f"browser tests skipped: {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()
