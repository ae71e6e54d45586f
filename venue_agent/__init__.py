"""hetang-agent: the branch-venue agent (check-ins, schedule, stream health)."""

__version__ = "0.1.0"
