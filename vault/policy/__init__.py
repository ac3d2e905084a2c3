"""vault.policy (under construction)."""
