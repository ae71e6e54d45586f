"""hetang-agent: the branch-venue agent (check-ins, schedule, stream health)."""
