"""The vault's operations, one module per group, each taking a
:class:`~vault._ops.session.Session`; :class:`vault.Vault` delegates to
them (docs/DESIGN.md §6). The audit discipline they share is
:mod:`vault._ops.discipline`."""
