"""Fixtures of the agent tests (see agent_helpers.py)."""

from agent_helpers import agent  # noqa: F401  (the live agent fixture)
