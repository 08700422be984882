"""The spool's files on a real disk: what a spooled delivery holds, and the spool's size bound."""

from __future__ import annotations

from pathlib import Path

from raibid_api.webhooks.events import WebhookEvent
from raibid_api.webhooks.spool import DeliverySpool, SpooledDelivery

EVENT = WebhookEvent(
    kind="push",
    forge="gitea",
    repo="acme/widgets",
    clone_url="https://git.example.test/acme/widgets.git",
    ref="refs/heads/main",
    commit="c" * 40,
    branch="main",
    author="Ann",
    pusher="ann",
    message="fix",
    changed_paths=frozenset({"src/a.py", "docs/b.md"}),
)


def spooled(n: int) -> SpooledDelivery:
    return SpooledDelivery(
        forge="gitea",
        delivery_id=f"d-{n}",
        event_type="push",
        signature="valid",
        source="192.0.2.1",
        received_ms=1_700_000_000_000 + n,
        event=EVENT,
    )


def test_spooled_delivery_reads_back_exactly_as_written(tmp_path: Path) -> None:
    spool = DeliverySpool(tmp_path, 1_000_000)
    spool.open()

    assert spool.write(spooled(1))

    [path] = spool.pending()
    assert spool.read(path) == spooled(1)
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_pending_files_come_oldest_first(tmp_path: Path) -> None:
    spool = DeliverySpool(tmp_path, 1_000_000)
    spool.open()
    for n in (3, 1, 2):
        spool.write(spooled(n))

    read = [spool.read(path) for path in spool.pending()]

    assert [d.delivery_id for d in read if d is not None] == ["d-1", "d-2", "d-3"]


def test_unfinished_temporary_files_are_dropped_on_open(tmp_path: Path) -> None:
    (tmp_path / ".tmp-0001-gitea-x.json").write_bytes(b'{"half')
    spool = DeliverySpool(tmp_path, 1_000_000)

    spool.open()

    assert list(tmp_path.iterdir()) == []


def test_size_bound_holds_across_a_restart_and_frees_on_removal(tmp_path: Path) -> None:
    size = len(spooled(1).to_json())
    first = DeliverySpool(tmp_path, 2 * size)
    first.open()
    assert first.write(spooled(1))

    again = DeliverySpool(tmp_path, 2 * size)
    again.open()
    assert again.write(spooled(2))
    assert not again.write(spooled(3))
    again.remove(again.pending()[0])

    assert again.write(spooled(3))
    assert len(again.pending()) == 2


def test_unreadable_file_is_set_aside_and_frees_its_space(tmp_path: Path) -> None:
    bad = tmp_path / "0000000000001-gitea-x.json"
    bad.write_bytes(b'{"forge": "gitea"}')
    spool = DeliverySpool(tmp_path, len(spooled(1).to_json()) + 1)
    spool.open()
    assert not spool.write(spooled(1))

    assert spool.read(bad) is None

    assert (tmp_path / "0000000000001-gitea-x.json.bad").exists()
    assert spool.pending() == []
    assert spool.write(spooled(1))


def test_depth_counts_what_waits_across_a_restart_without_listing(tmp_path: Path) -> None:
    spool = DeliverySpool(tmp_path, 1_000_000)
    spool.open()
    for n in range(3):
        assert spool.write(spooled(n))
    assert spool.depth == 3
    first, second, _ = spool.pending()
    spool.remove(first)
    spool.set_aside(second, "test")
    assert spool.depth == 1
    again = DeliverySpool(tmp_path, 1_000_000)
    again.open()
    assert again.depth == 1
