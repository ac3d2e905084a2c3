"""``vault demo``: the whole story, in a temporary folder, in seconds.

Every step runs a real ``vault`` command (in this process, through the same
entry point as the console script) and shows it as the reader would type
it, with what it printed and its exit code. The office files are generated
(:mod:`vault_cli._demo_files`); the policy is the office example shipped with
the package, with the four people's fresh keys written in.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shlex
import shutil
import tempfile
from pathlib import Path

import click

from vault.errors import UsageError, VaultError


class _Story:
    """Runs commands in ``root`` and narrates them on stdout."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.step = 0

    def say(self, text: str = "") -> None:
        click.echo(text)

    def chapter(self, text: str) -> None:
        self.step += 1
        click.echo(f"\n{self.step}. {text}")

    def show(self, text: str) -> str:
        # Paths are shown relative to the demo folder, as if typed there.
        return text.replace(str(self.root) + os.sep, "")

    def vault(self, *args: str, quiet: bool = False, expect: int = 0) -> tuple[str, str]:
        """Run ``vault ARGS``; show the command, its output and exit code."""
        from .main import cli

        shown = self.show(shlex.join(args))
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(list(args), prog_name="vault", standalone_mode=False)
        if not quiet or code != expect:
            click.echo(f"   $ vault {shown}")
            for line in (out.getvalue() + err.getvalue()).splitlines():
                click.echo(f"     {self.show(line)}")
            if code != 0:
                click.echo(f"     (exit code {code})")
        if code != expect:
            raise VaultError(
                f"demo step failed: 'vault {shown}' exited {code}, expected {expect}",
                hint="its output is above; rerun with --keep to inspect the folder",
            )
        return out.getvalue(), err.getvalue()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _policy_text(keys: dict[str, dict[str, str]]) -> str:
    from ._demo_policy import office_policy

    return office_policy(keys)


def _write_office_files(root: Path) -> tuple[Path, Path]:
    from . import _demo_files

    decision = root / "board-decision.docx"
    decision.write_bytes(
        _demo_files.docx(
            "Board decision: the office moves",
            [
                "To: the leadership team",
                "The office moves to the new building on the first of next quarter.",
                "Staff are told at the general meeting; until then, not a word.",
            ],
        )
    )
    budget = root / "budget-2025.xlsx"
    budget.write_bytes(
        _demo_files.xlsx(
            "Budget 2025",
            "2025",
            [
                ["Item", "Amount (EUR)"],
                ["Salaries", 412000],
                ["Rent", 36000],
                ["Archive digitisation", 58500],
                ["Total", "=SUM(B2:B4)"],
            ],
        )
    )
    return decision, budget


def tell_story(root: Path) -> None:
    s = _Story(root)
    s.say(f"vault demo: a small office keeps its confidential papers. Working in {root}")

    s.chapter(
        "The security officer makes identities for four people: herself, a clerk, "
        "the leader and an outsider. (In real life each person makes their own, "
        "protected by a passphrase; the demo skips passphrases to run unattended.)"
    )
    keys: dict[str, dict[str, str]] = {}
    for name in ("officer", "clerk", "leader", "outsider"):
        key = str(root / f"{name}.key")
        s.vault("identity", "new", name, "-o", key, "--no-passphrase", quiet=name != "officer")
        out, _ = s.vault("identity", "show", key, "--json", quiet=True)
        keys[name] = json.loads(out)
    s.say("   The others did the same. Each file is a standard age identity, with a "
          "post-quantum (ML-KEM-768 + X25519) key; each person sends the officer only the "
          "public parts (clerk.key.pub), which the officer turns into the policy's entry:")
    out, _ = s.vault("identity", "show", str(root / "clerk.key.pub"))

    s.chapter(
        "The officer writes the office policy with those public keys, and creates "
        "the vault. She signs the policy; a recovery key is made to keep offline."
    )
    policy = root / "office.yaml"
    policy.write_text(_policy_text(keys), encoding="utf-8")
    vault_dir = root / "vault"
    s.vault(
        "init", str(vault_dir), "--policy", str(policy),
        "--identity", str(root / "officer.key"),
        "--recovery-out", str(root / "recovery.key"),
    )

    def as_(name: str, *args: str, quiet: bool = False, expect: int = 0) -> tuple[str, str]:
        return s.vault(
            "--vault", str(vault_dir), "--identity", str(root / f"{name}.key"), *args,
            quiet=quiet, expect=expect,
        )

    memo, budget = _write_office_files(root)
    s.chapter(
        f"The clerk seals two office files: {budget.name}, a spreadsheet, and "
        f"{memo.name}, a Word document. Each gets a label (level and need-to-know "
        "compartment) and a new random id."
    )
    out, _ = as_("clerk", "seal", str(budget), "--level", "CONFIDENTIAL",
                 "--compartment", "FINANCE", "--title", "Budget 2025")
    budget_id = out.split()[0]
    out, _ = as_("clerk", "seal", str(memo), "--level", "CONFIDENTIAL",
                 "--compartment", "BOARD", "--title", "Board decision: the office moves")
    memo_id = out.split()[0]

    s.chapter("The leader lists what she may see: labels for everything she may list, "
              "and the titles of the documents she may open (titles are encrypted).")
    as_("leader", "ls")

    s.chapter("The leader opens the budget and gets back exactly the clerk's bytes.")
    opened = root / "budget-opened-by-leader.xlsx"
    as_("leader", "open", budget_id, "-o", str(opened))
    a, b = _sha256(budget), _sha256(opened)
    s.say(f"   SHA-256 of the clerk's file:  {a}")
    s.say(f"   SHA-256 of the leader's copy: {b}")
    s.say("   Identical." if a == b else "   DIFFERENT: something is wrong.")
    if a != b:
        raise UsageError("demo step failed: the opened file differs from the original")

    s.chapter(
        "The outsider, a visiting contractor cleared for PUBLIC only, tries to open "
        "the board decision. The policy denies it (exit code 3) and says which rule; "
        "the attempt is on the record before anything is decrypted. Nor could the "
        "outsider decrypt it with any age tool: no key they hold opens it."
    )
    as_("outsider", "open", memo_id, "-o", str(root / "stolen.docx"), expect=3)

    s.chapter(
        "The decision is announced at the general meeting, so the leader "
        "reclassifies it for all staff, with a justification. The new label is "
        "signed by the leader and bound to the document."
    )
    as_("leader", "reclassify", memo_id, "--level", "INTERNAL//STAFF",
        "--justification", "announced to all staff at the general meeting")
    as_("leader", "info", memo_id)

    s.chapter(
        "The officer reviews the audit log: every attempt above, allowed or denied, "
        "is there once, signed by the person who acted, in an RFC 6962 Merkle tree. "
        "She publishes a signed checkpoint (auditors keep a copy elsewhere) and "
        "verifies the whole log: the tree, the checkpoint against the key pinned "
        "in the vault, and every record's signature."
    )
    s.vault("--vault", str(vault_dir), "audit", "log")
    s.vault("--vault", str(vault_dir), "audit", "checkpoint")
    s.vault("--vault", str(vault_dir), "audit", "verify")

    _recovery(s, root, vault_dir, budget, budget_id)

    s.chapter(
        "Someone with write access to the vault's folder flips one byte of the "
        "sealed budget. The next open notices (exit code 4) and writes nothing."
    )
    sealed = _stored(vault_dir, budget_id)
    data = bytearray(sealed.read_bytes())
    data[len(data) - 20] ^= 0x01
    sealed.write_bytes(bytes(data))
    s.say(f"   (flipped one bit of byte {len(data) - 20} of vault/docs/{sealed.name})")
    as_("leader", "open", budget_id, "-o", str(root / "budget-again.xlsx"), expect=4)

    s.say("\nThat is the whole story: keys decide who can read, labels cannot be "
          "changed unseen, and the log remembers every attempt.")


def _stored(vault_dir: Path, doc_id: str) -> Path:
    """The file holding a document's current version (docs/ID.VERSION.age)."""
    (path,) = (vault_dir / "docs").glob(f"{doc_id}.*.age")
    return path


def _recovery(s: _Story, root: Path, vault_dir: Path, original: Path, doc_id: str) -> None:
    s.chapter(
        "Recovery never needs the vault: the officer takes the offline recovery identity "
        "and decrypts the budget's stored file with plain age. 'vault age' is a plain age "
        "v1 implementation (no policy, no audit log: nothing is asked or recorded, which is "
        "why the recovery identity stays offline)."
    )
    sealed = _stored(vault_dir, doc_id)
    recovered = root / "budget-recovered.xlsx"
    s.vault("age", "decrypt", "-i", str(root / "recovery.key"), "-o", str(recovered),
            str(sealed))
    same = _sha256(recovered) == _sha256(original)
    s.say("   The clerk's bytes again." if same else "   DIFFERENT: something is wrong.")
    if not same:
        raise UsageError("demo step failed: the recovered file differs from the original")
    s.say("   The keys are post-quantum (the office policy requires it), so any age "
          "implementation\n   with post-quantum support opens the same file: age 1.3 or later "
          "('age -d -i recovery.key FILE'),\n   or typage (the age-encryption npm package). "
          "Older age (1.1, 1.2) cannot; an office that must\n   recover with it sets "
          "'post_quantum: preferred' and names an X25519 recovery recipient, and\n   accepts "
          "that documents are then only as safe as X25519 against a future quantum computer.")


@click.command()
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False),
    help="Tell the story in this (new or empty) folder and keep it.",
)
@click.option("--keep", is_flag=True, help="Keep the temporary folder afterwards.")
def demo(directory: str | None, keep: bool) -> None:
    """Tell the whole story in a temporary folder: identities, policy, sealing,
    opening, a denial, a reclassification, the audit log, a tampered file."""
    if directory is not None:
        root = Path(directory).absolute()
        if root.exists() and any(root.iterdir()):
            raise UsageError(f"{directory} is not empty", hint="name a new or empty folder")
        root.mkdir(parents=True, exist_ok=True)
        keep = True
    else:
        root = Path(tempfile.mkdtemp(prefix="vault-demo-"))
    try:
        tell_story(root)
    finally:
        if keep:
            click.echo(f"\nThe demo folder is kept: {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
            click.echo("\n(The temporary folder is gone; run 'vault demo --keep' to look around.)")
