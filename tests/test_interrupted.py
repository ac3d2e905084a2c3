"""An operation interrupted once its completion records are written.

From that record on, the new document versions count: whatever stops the
operation afterwards (Ctrl-C while the trusted state replays the records,
before the call returns) must leave them in place. Taking them away, as a
failure before the record rightly does, would leave the log recording
documents that are gone.
"""

from __future__ import annotations

import io
from typing import Any

import pytest

from tests.office import Office
from vault._ops import admin, discipline

LABEL = {"level": "INTERNAL", "compartments": ["STAFF"]}


def _interrupt_after_completion(monkeypatch: pytest.MonkeyPatch, module: Any) -> None:
    """Ctrl-C right after the completion records are written and replayed,
    before the operation returns (injected: a real one lands there only by
    chance, as in tests/test_seal_workers.py's kill test)."""
    real = module.check_counted

    def interrupted(*args: Any) -> None:
        monkeypatch.setattr(module, "check_counted", real)
        real(*args)
        raise KeyboardInterrupt

    monkeypatch.setattr(module, "check_counted", interrupted)


def test_documents_whose_completion_was_recorded_stay_when_interrupted(
        office: Office, monkeypatch: pytest.MonkeyPatch) -> None:
    files = [office.file(f"memo-{i}.bin", b"memo %d" % i) for i in range(20)]
    clerk = office.as_("clerk")
    doc = clerk.seal(files[0], **LABEL)
    _interrupt_after_completion(monkeypatch, discipline)
    with pytest.raises(KeyboardInterrupt):
        clerk.seal_many(files[1:], **LABEL)
    _interrupt_after_completion(monkeypatch, discipline)
    with pytest.raises(KeyboardInterrupt):
        clerk.reclassify(doc.id, level="CONFIDENTIAL", justification="wider than it seemed")
    clerk.close()
    # The records count, so the documents they name are there, whole.
    leader = office.as_("leader")
    listed = leader.ls()
    assert len(listed) == 20
    for d in listed:
        out = io.BytesIO()
        leader.open(d.id, out)
        assert out.getvalue().startswith(b"memo ")
    assert leader.info(doc.id).label.level == "CONFIDENTIAL"
    report = office.as_("officer").doctor()
    assert report.ok, report.problems


def test_rewrapped_versions_whose_record_was_written_stay_when_interrupted(
        office: Office, monkeypatch: pytest.MonkeyPatch) -> None:
    clerk = office.as_("clerk")
    docs = {clerk.seal(io.BytesIO(b"memo %d" % i), **LABEL).id: b"memo %d" % i
            for i in range(3)}
    clerk.close()
    _interrupt_after_completion(monkeypatch, admin)
    with pytest.raises(KeyboardInterrupt):
        office.as_("officer").rotate()  # an administrator: new keys, every header rewrapped
    leader = office.as_("leader")
    for doc_id, data in docs.items():
        out = io.BytesIO()
        leader.open(doc_id, out)
        assert out.getvalue() == data
    report = office.as_("officer").doctor()
    assert report.ok, report.problems
