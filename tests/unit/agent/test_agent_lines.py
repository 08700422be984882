"""Output bytes to log lines (split, cap, mask), clone URL redaction, backoff and base env."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from raibid_api.agent.client import RetryPolicy
from raibid_api.agent.lines import TRUNCATED_MARKER, LineAssembler, SecretMasker, cap_line
from raibid_api.agent.runner import base_environment
from raibid_api.agent.workspace import redact_url, url_credentials


def test_masker_replaces_every_occurrence_and_the_longest_secret_whole() -> None:
    masker = SecretMasker(["abc", "abcdef", ""])

    assert masker.mask("x abcdef y abc z") == "x *** y *** z"


def test_masker_hides_each_line_of_a_multi_line_secret() -> None:
    masker = SecretMasker(["-----BEGIN KEY-----\nc2VjcmV0\n-----END KEY-----\n"])

    assert masker.mask("c2VjcmV0") == "***"


def test_masker_without_secrets_leaves_text_alone() -> None:
    assert SecretMasker([]).mask("a.*b") == "a.*b"


def test_assembler_joins_lines_split_across_chunks_and_strips_crlf() -> None:
    assembler = LineAssembler(SecretMasker())

    assert assembler.feed(b"hel") == []
    assert assembler.feed(b"lo\r\nwor") == ["hello"]
    assert assembler.feed(b"ld\n\n") == ["world", ""]
    assert assembler.feed(b"tail") == []
    assert assembler.finish() == ["tail"]


def test_assembler_replaces_invalid_utf8() -> None:
    assert LineAssembler(SecretMasker()).feed(b"caf\xc3\xa9 \xff\n") == ["café \ufffd"]


def test_overlong_line_is_cut_to_the_cap_with_a_marker() -> None:
    assembler = LineAssembler(SecretMasker(), max_line_bytes=300)

    [line] = assembler.feed(b"x" * 10_000 + b"\n")

    assert len(line.encode()) <= 300
    assert line.endswith(TRUNCATED_MARKER)
    assert assembler.feed(b"next\n") == ["next"]


def test_secret_straddling_the_cap_leaks_no_prefix() -> None:
    secret = "SECRETVALUE" * 5
    assembler = LineAssembler(SecretMasker([secret]), max_line_bytes=300)
    prefix = "y" * (300 - len(TRUNCATED_MARKER) - 10)

    [line] = assembler.feed(f"{prefix}{secret}{'z' * 1000}\n".encode())

    assert "SECRET" not in line
    assert len(line.encode()) <= 300


def test_cap_never_splits_a_multibyte_character() -> None:
    line = cap_line("é" * 400, 300)

    assert len(line.encode()) <= 300
    assert "\ufffd" not in line


@given(st.binary(max_size=2000), st.lists(st.integers(1, 64), min_size=1, max_size=50))
def test_lines_do_not_depend_on_how_output_is_chunked(data: bytes, sizes: list[int]) -> None:
    whole = LineAssembler(SecretMasker(["ab"]), max_line_bytes=256)
    expected = whole.feed(data) + whole.finish()
    chunked = LineAssembler(SecretMasker(["ab"]), max_line_bytes=256)
    lines, start, index = [], 0, 0
    while start < len(data):
        size = sizes[index % len(sizes)]
        lines += chunked.feed(data[start : start + size])
        start, index = start + size, index + 1

    assert lines + chunked.finish() == expected


@pytest.mark.parametrize(
    ("url", "redacted", "secrets"),
    [
        ("https://user:tok3n@forge.example/a/b.git", "https://***@forge.example/a/b.git",
         ["user:tok3n", "tok3n"]),
        ("http://u:p%40ss@forge.example/b.git", "http://***@forge.example/b.git",
         ["u:p%40ss", "p%40ss", "u:p@ss", "p@ss"]),
        ("https://ghp_abc123@github.com/a/b.git", "https://***@github.com/a/b.git", ["ghp_abc123"]),
        ("ssh://git:pw@forge.example/a/b.git", "ssh://git:***@forge.example/a/b.git", ["pw"]),
        ("ssh://git@forge.example/a/b.git", "ssh://git@forge.example/a/b.git", []),
        ("git@forge.example:a/b.git", "git@forge.example:a/b.git", []),
        ("file:///srv/git/b.git", "file:///srv/git/b.git", []),
    ],
)  # fmt: skip
def test_clone_url_credentials_are_found_and_redacted(
    url: str, redacted: str, secrets: list[str]
) -> None:
    assert url_credentials(url) == secrets
    assert redact_url(url) == redacted


def test_backoff_grows_to_its_cap_with_jitter_in_the_upper_half() -> None:
    delays = RetryPolicy(initial=0.1, maximum=1.0, multiplier=2.0).delays()

    taken = [next(delays) for _ in range(10)]

    nominal = [0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    assert all(d / 2 <= t <= d for t, d in zip(taken, nominal, strict=True))


def test_base_environment_passes_only_the_minimum_and_marks_ci() -> None:
    env = base_environment({"PATH": "/bin", "HOME": "/home/a", "RAIBID_TOKEN": "t", "AWS_KEY": "k"})

    assert env == {"PATH": "/bin", "HOME": "/home/a", "LANG": "C.UTF-8", "CI": "true"}
