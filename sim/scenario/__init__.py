"""The scenario: YAML in, a validated Scenario out (its sections in ``schema/``); runs nothing."""
