"""A small policy for the decision tests, with rules supplied by each test.

Levels PUBLIC < INTERNAL < CONFIDENTIAL < SECRET; compartments A, B, C;
caveats X, Y. alice and dave are cleared SECRET [A, B, C] (dave in group
leads, with role approver), bob CONFIDENTIAL [A] (group staff), carol
INTERNAL (group staff), erin PUBLIC.
"""

from __future__ import annotations

from datetime import UTC, datetime

from vault.policy import Policy, load_policy_text

KEYS = [
    ("age1vwhk2vap2tp7upv3x4hx6rs3ld8l5f3dh3954vhj2j9nwq3x5y2spvhulh",
     "ed25519:fHCFntuDteUgfeectmHhL+yfI9ddg3JTLgQlspLLjTw="),
    ("age1vzk7kx0pamye8n640g4gd9v773q3gx9cvfzlgswx8xp3u8es3gkqsnkr6q",
     "ed25519:1H0DDbslu7HDN7eIRXsjiyBl9t/QWeV0JD1xXDYM/ik="),
    ("age16tef2pzukjdm48cvfrushwx3yr5d3pstfp0dnys7pdqse4uuashq75y6yr",
     "ed25519:xjsLCCuB90cZGJWGnAikiEOwY3CPNGTrjWmRdAqWhyk="),
    ("age1pfzy62q4yt7fxlcsv0lyf52dfzzw9rtzgg2fk5x06dz2c53nz3kqkxx3p4",
     "ed25519:QPV8i7k1jX/l/6qjhTRXrK+0xOX1lH63t9Ja+tTyX40="),
    ("age1vgk6y5mzjm9p0wfa4hhxx9g40h380h35muh3utdhe6w62dxyxs3qakd7mk",
     "ed25519:byxaGyyHFqrHilcLGnVp888UAn1sUuHZIpeIMk+wJFc="),
]
RECOVERY = "age1qxyl7dzrszkvvfk84ftzjenn99ukj5zt3rygssvr82fnjcs4yqyq9drc8h"

LEVELS = ["PUBLIC", "INTERNAL", "CONFIDENTIAL", "SECRET"]
COMPARTMENTS = ["A", "B", "C"]
CAVEATS = ["X", "Y"]
CLEARANCES = {
    "alice": ("SECRET", ["A", "B", "C"]),
    "bob": ("CONFIDENTIAL", ["A"]),
    "carol": ("INTERNAL", []),
    "dave": ("SECRET", ["A", "B", "C"]),
    "erin": ("PUBLIC", []),
}
AT = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def policy_text(rules: str, extra: str = "") -> str:
    users = "".join(
        f"  {name}:\n    recipient: {KEYS[i][0]}\n    signing_key: {KEYS[i][1]}\n"
        f"    clearance: {{level: {lvl}, compartments: [{', '.join(comps)}]}}\n"
        + ("    roles: [approver]\n" if name == "dave" else "")
        for i, (name, (lvl, comps)) in enumerate(CLEARANCES.items())
    )
    return (
        "version: 1\nname: test\npost_quantum: off\n"
        "levels:\n  - PUBLIC\n  - {name: INTERNAL, aliases: [I]}\n"
        "  - {name: CONFIDENTIAL, aliases: [C]}\n"
        "  - {name: SECRET, aliases: [S], marking: SEKRIT}\n"
        "compartments: [A, B, {name: C, marking: CHARLIE}]\ncaveats: [X, Y]\n"
        "roles: [approver]\n"
        "groups:\n  staff: {members: [bob, carol]}\n  leads: {members: [alice, dave]}\n"
        f"users:\n{users}"
        f"recovery: [{RECOVERY}]\n"
        f"{extra}"
        f"rules:\n{rules}"
    )


def make_policy(rules: str, extra: str = "") -> Policy:
    return load_policy_text(policy_text(rules, extra), "test.yaml")


def rule(rule_id: str, effect: str, actions: str, who: str = "{anyone: true}",
         **more: str) -> str:
    """One rule in YAML; ``more`` adds keys verbatim (label='{max: SECRET}')."""
    lines = [f"  - id: {rule_id}", f"    effect: {effect}", f"    actions: [{actions}]",
             f"    who: {who}"]
    lines += [f"    {k}: {v}" for k, v in more.items()]
    return "\n".join(lines) + "\n"
