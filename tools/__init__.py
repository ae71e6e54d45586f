"""Project tooling run by the Makefile (not shipped with the server or the agent)."""
