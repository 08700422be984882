"""Journal entries in their stream: one JSON field, and the per-field form of earlier versions."""

from __future__ import annotations

from raibid_api.webhooks.journal import ENTRY_FIELD, Decision, JournalEntry

ENTRY = JournalEntry(
    received_at="2026-12-04T10:00:00.123Z", forge="gitea", event="push", delivery_id="d-1",
    signature="valid", decision=Decision.CREATED, job_id="j-1", repo="acme/widgets",
    source="10.0.0.7", duration_ms=1.25, spooled=True,
)  # fmt: skip


def test_an_entry_is_one_json_field_and_reads_back_equal() -> None:
    fields = ENTRY.to_fields()

    assert list(fields) == [ENTRY_FIELD]
    assert JournalEntry.from_fields(fields) == ENTRY


def test_an_entry_written_field_by_field_by_an_earlier_version_still_reads() -> None:
    legacy = {
        "received_at": "2026-12-04T10:00:00.123Z", "forge": "gitea", "event": "push",
        "delivery_id": "d-1", "signature": "valid", "decision": "created", "reason": "",
        "detail": "", "job_id": "j-1", "repo": "acme/widgets", "source": "10.0.0.7",
        "duration_ms": "1.25", "spooled": "1",
    }  # fmt: skip

    assert JournalEntry.from_fields(legacy) == ENTRY


def test_fields_a_later_version_adds_are_dropped() -> None:
    fields = ENTRY.to_fields()
    fields[ENTRY_FIELD] = fields[ENTRY_FIELD].replace('"forge"', '"new_field":1,"forge"')

    assert JournalEntry.from_fields(fields) == ENTRY
