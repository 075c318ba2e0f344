"""The worker image: pinned base, non-root user, a health check on /livez."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parents[2]
DOCKERFILE = (ROOT / "deploy" / "Dockerfile").read_text()
INSTRUCTIONS = [
    line.split(None, 1)
    for line in re.sub(r"\\\n", " ", DOCKERFILE).splitlines()
    if line.strip() and not line.lstrip().startswith("#")
]


def test_base_images_are_pinned_slim_python_311() -> None:
    bases = [args.split()[0] for op, args in INSTRUCTIONS if op == "FROM"]
    assert bases and all(re.fullmatch(r"python:3\.11\.\d+-slim-\w+", b) for b in bases)


def test_the_worker_runs_as_a_non_root_user() -> None:
    users = [args.strip() for op, args in INSTRUCTIONS if op == "USER"]
    assert users and users[-1] not in {"root", "0"}


def test_it_starts_a_worker_and_checks_livez_on_the_exposed_port() -> None:
    ops = dict(INSTRUCTIONS)
    assert ops["ENTRYPOINT"].strip() == '["tunestream"]'
    assert ops["CMD"].strip() == '["worker"]'
    assert "/livez" in ops["HEALTHCHECK"] and "6066" in ops["HEALTHCHECK"]
    assert ops["EXPOSE"].strip() == "6066"


def test_every_copied_path_exists_and_tests_stay_out_of_the_image() -> None:
    for op, args in INSTRUCTIONS:
        if op == "COPY" and not args.startswith("--from"):
            for source in args.split()[:-1]:
                assert (ROOT / source).exists(), source
    assert "tests" in (ROOT / ".dockerignore").read_text().split()
