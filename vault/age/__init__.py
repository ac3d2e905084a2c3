"""vault.age (under construction)."""
