"""The demo city: its data, a year of history, plans, sessions, and agents to run beside it."""
