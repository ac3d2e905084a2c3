"""The ``vault`` command line: a thin Click wrapper over the :mod:`vault` library.

Installed as the import package ``vault_cli``; the console script ``vault``
runs :func:`vault_cli.main.main`.
"""
