"""Hetang's tests. The shared helpers in tests/support assert too: pytest rewrites their asserts
as it does the tests' own, so a failing helper explains itself."""

import pytest

pytest.register_assert_rewrite("tests.support")
