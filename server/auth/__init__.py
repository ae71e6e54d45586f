"""Authentication, authorization and request protection, all in one place."""
