"""Hetang server: sessions, attendance, training records and the live relay."""
