"""Example counts of the random-diagram properties: at least 500 in CI, fewer locally."""

import os

from hypothesis import settings

#: Examples per random-diagram property (CI runs the full count).
EXAMPLES = 500 if os.environ.get("CI") or os.environ.get("HYPOTHESIS_PROFILE") == "ci" else 60


def oracle_settings(examples: int = EXAMPLES):
    """Hypothesis settings for the random-diagram properties (no deadline, derandomized)."""
    return settings(max_examples=examples, deadline=None, derandomize=True, database=None)
