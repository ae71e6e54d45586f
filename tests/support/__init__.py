"""What the tests share: builders, helpers and constants (conftest.py holds only fixtures)."""
