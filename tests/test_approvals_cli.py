"""The two-person rule on the command line, by two people on two processes
(the installed ``vault`` script, each with only their own identity file),
for every rule of every shipped policy that requires approval, on both
backends: the requester is refused, asks, the approver approves on their
own, the requester acts. No process ever opens another person's key.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from approval_cli_support import Site, make_site
from backends import Kind


def seal(site: Site, who: str, *label: str) -> str:
    src = site.root / "people" / who / "paper.txt"
    src.write_text("TOP SECRET//SI\nThe paper.\n" if "TOP SECRET" in label else "The paper.\n")
    return site.ok(who, "seal", str(src), *label, "--justification", "1.4(c)").stdout.strip()


def refused_then_approved(site: Site, requester: str, approver: str, act: list[str],
                          ask: list[str]) -> str:
    """The requester acts and is refused for want of approval; asks; the
    approver approves in their own process; the requester acts with it."""
    r = site.run(requester, *act)
    assert r.code == 3 and r.stdout == "", r.stderr
    assert r.stderr.startswith(f"vault: {act[0]} denied: a second person's approval is "
                               "required (rule "), r.stderr
    assert f"hint: ask for approval with 'vault request {act[0]}" in r.stderr
    request_id = site.ok(requester, "request", *ask).stdout.strip()
    waiting = json.loads(site.ok(approver, "approvals", "--json").stdout)
    assert [w["id"] for w in waiting] == [request_id]
    assert waiting[0]["requester"] == requester
    r = site.ok(approver, "approve", request_id, "--yes")
    assert len(r.stdout.strip()) == 64
    assert f"{requester} asks to {ask[0] if ask[0] != 'policy-apply' else ''}" in r.stderr
    assert "why approval is needed:" in r.stderr and f"your approval ({approver}) counts" \
        in r.stderr
    site.ok(requester, *act, "--request", request_id)
    keys = site.keys_read()
    assert all(whose <= {who} for who, whose in keys.items()), keys
    return request_id


# -- the issue's own cases: policies/us-eo13526.yaml ---------------------------------


def test_the_archivist_shreds_with_the_directors_approval(tmp_path: Path,
                                                          backend: Kind) -> None:
    site = make_site(tmp_path, backend, "us-eo13526")
    doc = seal(site, "director", "--level", "TOP SECRET", "--compartment", "SI")
    request_id = refused_then_approved(
        site, "archivist", "director",
        ["shred", doc, "--justification", "retention schedule GRS 5.2"],
        ["shred", doc, "--justification", "retention schedule GRS 5.2"])
    assert json.loads(site.ok("director", "ls", "--json").stdout) == []
    log = site.audit("director")
    mine = [(x["action"], x["outcome"], x["actor"]["name"]) for x in log  # type: ignore[index]
            if x["doc"] == doc]
    assert mine[-4:] == [("request", "allowed", "archivist"), ("approve", "allowed", "director"),
                         ("shred", "allowed", "archivist"), ("shred", "done", "archivist")]
    used = next(x for x in log if x["action"] == "shred" and x["outcome"] == "allowed")
    assert f"request {request_id} of archivist, approved by director" in str(used["reason"])


def test_the_director_exports_top_secret_with_a_second_approval(tmp_path: Path,
                                                                backend: Kind) -> None:
    site = make_site(tmp_path, backend, "us-eo13526")
    doc = seal(site, "director", "--level", "TOP SECRET", "--compartment", "SI")
    home = site.root / "people"
    out = home / "director" / "out.age"
    r = site.run("director", "export", doc, "-o", str(out), "--justification", "oversight")
    assert r.code == 3 and "approval is required (rule top-secret-two-person" in r.stderr
    # The request travels as a file; so does the approval.
    request_file = home / "director" / "request.json"
    site.ok("director", "request", "export", doc, "--justification", "oversight", "-o",
            str(request_file))
    (home / "deputy-director" / "request.json").write_bytes(request_file.read_bytes())
    site.ok("deputy-director", "approve", "request.json", "--yes", "-o", "approval.json")
    approval = home / "director" / "approval.json"
    approval.write_bytes((home / "deputy-director" / "approval.json").read_bytes())
    r = site.ok("director", "export", doc, "-o", str(out), "--approval", str(approval))
    assert out.read_bytes().startswith(b"age-encryption.org/v1\n")
    assert f"exported {doc}" in r.stderr
    # Used once: a second export with the same approval is refused.
    r = site.run("director", "export", doc, "-o", str(out) + "2", "--approval", str(approval))
    assert r.code == 3 and r.stdout == ""
    assert "was already performed (audit record" in r.stderr
    assert not (home / "director" / "out.age2").exists()
    keys = site.keys_read()
    assert keys == {"director": {"director"}, "deputy-director": {"deputy-director"}}


# -- every other shipped rule that requires approval ----------------------------------

RULES = {
    "office secret-two-leaders (reclassify)": (
        "office", "leader", "deputy", ["--level", "SECRET", "--compartment", "BOARD"],
        ["reclassify", "{doc}", "--level", "CONFIDENTIAL", "--justification", "merger closed"]),
    "office secret-two-leaders (declassify)": (
        "office", "deputy", "leader", ["--level", "SECRET", "--compartment", "BOARD"],
        ["declassify", "{doc}", "--justification", "published"]),
    "corporate highly-confidential-downgrade": (
        "corporate", "cfo", "ciso", ["--level", "Highly Confidential", "--compartment",
                                     "Finance"],
        ["reclassify", "{doc}", "--level", "Confidential", "--justification", "announced"]),
    "tlp2 red-release-two-leads": (
        "tlp2", "incident-lead", "deputy-lead", ["--level", "RED", "--compartment",
                                                 "IR-2025-041"],
        ["declassify", "{doc}", "--justification", "advisory published"]),
    "uk-gsc top-secret-destruction": (
        "uk-gsc", "senior-official", "permanent-secretary", ["--level", "TOP SECRET",
                                                             "--compartment", "CABINET"],
        ["shred", "{doc}", "--justification", "superseded draft"]),
}


@pytest.mark.parametrize("rule", sorted(RULES))
def test_every_shipped_rule_that_requires_approval(tmp_path: Path, backend: Kind,
                                                   rule: str) -> None:
    policy, requester, approver, label, act = RULES[rule]
    site = make_site(tmp_path, backend, policy)
    doc = seal(site, requester, *label)
    action = [a.replace("{doc}", doc) for a in act]
    refused_then_approved(site, requester, approver, action, action[:-2] + action[-2:])
