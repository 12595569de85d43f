"""The drills' short form: the functions in ``bench/drills`` with small sizes. Their asserts
are rewritten by pytest, so a failed one shows its values here as in any test."""

import logging
from collections.abc import Iterator

import pytest
import structlog

pytest.register_assert_rewrite("bench.drills")


@pytest.fixture(autouse=True)
def _warnings_and_worse_only() -> Iterator[None]:
    """A drill's hub logs every delivery; a failed drill's report should show its message and
    the warnings, not thousands of lines of debug (CI prints only a part of the output)."""
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    yield
    structlog.configure(**saved)
