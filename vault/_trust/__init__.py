"""The vault's roots of trust (docs/DESIGN.md §5): the manifest, the policy
chain, label classes, class keys and keyrings."""
