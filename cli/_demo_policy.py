"""The office policy ``vault demo`` runs under, with the demo's fresh keys.

``demo_policy.yaml`` is a copy of the example ``policies/office.yaml``,
shipped as package data so that the demo also works from an installed
package. Its users' keys are placeholders; the demo people (officer, clerk,
leader, outsider) get their newly made public keys written in, and the
example users the story does not need get fresh keys nobody keeps.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources

__all__ = ["office_policy", "office_policy_template"]


def office_policy_template() -> str:
    return resources.files("vault_cli").joinpath("demo_policy.yaml").read_text(encoding="utf-8")


def office_policy(keys: Mapping[str, Mapping[str, str]]) -> str:
    """The office policy with ``keys[user]["recipient"]`` and
    ``keys[user]["signing_key"]`` in place of the placeholders (fresh keys
    for the users not in ``keys``)."""
    from vault.policy._keys import fill_template, stand_in

    text, filled, _ = fill_template(office_policy_template(), keys, others=stand_in)
    missing = set(keys) - set(filled)
    if missing:
        # The shipped file and this code disagree: a packaging bug.
        raise RuntimeError(f"demo policy has no place for keys of {sorted(missing)}")
    return text
