"""Third-party verification: Go's golang.org/x/mod/sumdb/note and tlog check
our checkpoints (with `vault audit key`'s output), inclusion proofs, hash
file and consistency proofs. Go is required: without it this fails."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from audit_support import KEYS, fields, make_log
from click.testing import CliRunner

from vault.audit import AuditLog
from vault_cli.main import cli

SOURCE = Path(__file__).parent / "go" / "auditcheck" / "main.go"
GOPATH = "/usr/share/gocode"  # Debian's golang-golang-x-mod-dev


@pytest.fixture(scope="module")
def auditcheck(tmp_path_factory: pytest.TempPathFactory) -> Path:
    go = shutil.which("go")
    assert go is not None, "Go is required for the independent check (apt-get install golang-go)"
    assert Path(GOPATH, "src/golang.org/x/mod/sumdb/note").is_dir(), (
        "golang.org/x/mod is required (apt-get install golang-golang-x-mod-dev)"
    )
    out = tmp_path_factory.mktemp("go") / "auditcheck"
    env = {
        **os.environ,
        "GOPATH": GOPATH,
        "GO111MODULE": "off",  # GOPATH mode: offline, Debian's sources
        "GOFLAGS": "",
        "GOCACHE": os.environ.get("GOCACHE") or str(out.parent / "cache"),
    }
    subprocess.run([go, "build", "-o", str(out), str(SOURCE)], env=env, check=True, timeout=300)
    return out


def _cli(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    return result.stdout


def _files(tmp_path: Path, log_dir: Path, seq: int) -> list[str]:
    log = AuditLog.open(log_dir)
    (tmp_path / "vkey").write_text(_cli("audit", "key", "--log", str(log_dir)))
    (tmp_path / "proof").write_text(_cli("audit", "prove", str(seq), "--log", str(log_dir)))
    newest = log.paths.checkpoint_sizes()[-1]
    (tmp_path / "old").write_bytes(log.paths.checkpoint(7).read_bytes())
    consistency = log.consistency_proof(7, newest)
    (tmp_path / "consistency").write_text(
        "".join(base64.b64encode(h).decode() + "\n" for h in consistency)
    )
    return [
        str(tmp_path / "vkey"),
        str(log.paths.checkpoint(newest)),
        str(tmp_path / "proof"),
        str(log.paths.hashes),
        str(log.paths.log),
        str(tmp_path / "old"),
        str(tmp_path / "consistency"),
    ]


def _check(auditcheck: Path, args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(auditcheck), *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_go_verifies_checkpoints_proofs_and_hashes(auditcheck: Path, tmp_path: Path) -> None:
    log_dir = tmp_path / "log"
    log = make_log(log_dir, 61, every=7)
    log.append(fields("bob", 5), KEYS["bob"])
    _cli("audit", "checkpoint", "--log", str(log_dir))  # size 62
    for seq in (0, 13, 61):
        result = _check(auditcheck, _files(tmp_path, log_dir, seq))
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines() == [
            "checkpoint ok: audit.example.org/test size 62",
            f"inclusion ok: record {seq} in tree of size 62",
            f"record ok: line {seq} of the log",
            f"tree ok: 62 log lines hash to the checkpoint root; {2 * 62 - 5} stored hashes match",
            "consistency ok: 7 is a prefix of 62",
        ]


def test_go_rejects_what_we_would_reject(auditcheck: Path, tmp_path: Path) -> None:
    log_dir = tmp_path / "log"
    make_log(log_dir, 20, every=7)
    args = _files(tmp_path, log_dir, 9)
    assert _check(auditcheck, args).returncode == 0

    other = make_log(tmp_path / "other", 1)  # another log's key
    (tmp_path / "vkey2").write_text(other.verifier().verifier_key())
    result = _check(auditcheck, [str(tmp_path / "vkey2"), *args[1:]])
    assert result.returncode == 1 and "checkpoint signature" in result.stderr

    proof = (tmp_path / "proof").read_text().split("\n")
    i = proof.index("index 9") + 1
    proof[i] = base64.b64encode(bytes(32)).decode()
    (tmp_path / "proof").write_text("\n".join(proof))
    result = _check(auditcheck, args)
    assert result.returncode == 1 and "inclusion proof" in result.stderr

    _files(tmp_path, log_dir, 9)
    hashes = bytearray(Path(args[3]).read_bytes())
    hashes[5] ^= 1
    Path(args[3]).write_bytes(bytes(hashes))
    result = _check(auditcheck, args)
    assert result.returncode == 1 and "hash file" in result.stderr
