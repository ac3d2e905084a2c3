"""The office policy ``vault demo`` runs under, with the demo's fresh keys.

``demo_policy.yaml`` is a copy of the example ``policies/office.yaml``,
shipped as package data so that the demo also works from an installed
package. Its users' keys are placeholders; the demo people (officer, clerk,
leader, outsider) get their newly made public keys written in, and the
example users the story does not need get fresh keys nobody keeps.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from importlib import resources

__all__ = ["office_policy", "office_policy_template"]

_USER = re.compile(r"^  ([A-Za-z0-9._-]+):\s*$")
_KEY = re.compile(r"^(    (recipient|signing_key): )REPLACE-WITH-\S+\s*$")


def office_policy_template() -> str:
    return resources.files("vault_cli").joinpath("demo_policy.yaml").read_text(encoding="utf-8")


def office_policy(keys: Mapping[str, Mapping[str, str]]) -> str:
    """The office policy with ``keys[user]["recipient"]`` and
    ``keys[user]["signing_key"]`` in place of the placeholders (fresh keys
    for the users not in ``keys``)."""
    from vault.policy._keys import stand_in

    out: list[str] = []
    in_users = False
    user: str | None = None
    done: set[tuple[str, str]] = set()
    for line in office_policy_template().splitlines(keepends=True):
        if line.startswith("users:"):
            in_users = True
        elif line[:1].isalnum():
            in_users = False  # the next top-level section
        if in_users and (m := _USER.match(line)):
            user = m.group(1)
        elif in_users and user is not None and (k := _KEY.match(line)):
            field = k.group(2)
            value = keys[user][field] if user in keys else stand_in(field)
            line = f"{k.group(1)}{value}\n"
            done.add((user, field))
        out.append(line)
    missing = {(u, f) for u in keys for f in ("recipient", "signing_key")} - done
    if missing:
        # The shipped file and this code disagree: a packaging bug.
        raise RuntimeError(f"demo policy has no place for keys {sorted(missing)}")
    return "".join(out)
