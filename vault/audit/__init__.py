"""vault.audit (under construction)."""
