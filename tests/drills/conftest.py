"""The drills' short form: the functions in ``bench/drills`` with small sizes. Their asserts
are rewritten by pytest, so a failed one shows its values here as in any test."""

import pytest

pytest.register_assert_rewrite("bench.drills")
