"""The room screen's rotating self check-in codes: the agent signs, the server verifies from the
token's digest alone; a code lives for its 15 s window plus 2 s; the phone's pass; the second
factor, the venue's networks and the reviewer's flags."""

from __future__ import annotations

from urllib.parse import urlsplit

from hypothesis import given
from hypothesis import strategies as st

from server.auth import tokens
from server.domain import checkin_codes as codes
from server.domain.checkin_codes import EXPIRED, FORGED, ROTATION_S, ScanPass, check, code_key
from server.domain.self_checkin import (
    IdLast4,
    SmsCodeNotConfigured,
    hash_last4,
    last4_matches,
    network_allows,
    normal_last4,
    review_flags,
)
from venue_agent.checkin_code import CodeMaker

TOKEN = "hv_" + "k" * 43
KEY = code_key(tokens.digest(TOKEN))
T0 = 1_800_000_000 - 1_800_000_000 % ROTATION_S  # the first second of a window
WINDOW = T0 // ROTATION_S


def agent_code(now: float, venue: str = "VEN-1", session: str = "s1") -> codes.CheckinCode:
    """A code as the agent shows it, parsed back from the address the phone opens."""
    shown = CodeMaker("https://hetang.example.cn/", TOKEN).code(venue, session, now)
    parts = urlsplit(shown.url).path.split("/")
    assert parts[:2] == ["", "c"] and shown.url.startswith("https://hetang.example.cn/c/")
    parsed = codes.parse(parts[2], parts[3], parts[4], parts[5])
    assert parsed is not None
    return parsed


def test_the_agent_signs_what_the_server_verifies_from_the_digest() -> None:
    code = agent_code(T0 + 3)
    assert code.window == WINDOW and len(code.nonce) >= 15
    assert check(KEY, code, T0 + 3) is None


def test_a_code_lives_for_its_window_plus_two_seconds() -> None:
    code = agent_code(T0 + 14.9)
    assert check(KEY, code, T0 + 14.99) is None
    assert check(KEY, code, T0 + ROTATION_S + 1.9) is None  # the margin after rotation
    assert check(KEY, code, T0 + ROTATION_S + 2.0) == EXPIRED
    assert check(KEY, code, T0 + 2 * ROTATION_S) == EXPIRED
    assert check(KEY, code, T0 - 0.5) == EXPIRED  # from the future: a clock ahead is no help


def test_every_rotation_has_a_fresh_random_nonce_and_a_refresh_keeps_it() -> None:
    maker = CodeMaker("https://h", TOKEN)
    first, again = maker.code("V", "s", T0 + 1), maker.code("V", "s", T0 + 9)
    later = maker.code("V", "s", T0 + ROTATION_S)
    assert first.url == again.url and later.url != first.url
    assert first.expires_in_s == ROTATION_S - 1
    assert CodeMaker("https://h", TOKEN).code("V", "s", T0 + 1).url != first.url


def test_another_venue_token_or_a_changed_part_is_forged() -> None:
    code = agent_code(T0)
    other = code_key(tokens.digest("hv_" + "o" * 43))
    assert check(other, code, T0) == FORGED
    for changed in (
        codes.CheckinCode("VEN-2", code.session_id, code.window, code.nonce, code.signature),
        codes.CheckinCode(code.venue_code, "s2", code.window, code.nonce, code.signature),
        codes.CheckinCode(
            code.venue_code, code.session_id, code.window + 1, code.nonce, code.signature
        ),
    ):
        assert check(KEY, changed, T0) == FORGED


@given(st.text(max_size=40), st.text(max_size=40))
def test_parse_takes_only_well_formed_codes(window: str, token: str) -> None:
    found = codes.parse("V", "s", window, token)
    if found is not None:
        assert window.isdigit() and len(found.nonce) == 16 and len(found.signature) == 22


def test_a_pass_is_bound_to_its_phone_and_lasts_five_minutes() -> None:
    secret = b"s" * 32
    sealed = ScanPass("VEN-1", "s1", T0).seal(secret, "phone-a")
    assert ScanPass.open(secret, sealed, "phone-a", T0 + 299) == ScanPass("VEN-1", "s1", T0)
    assert ScanPass.open(secret, sealed, "phone-b", T0 + 1) is None
    assert ScanPass.open(secret, sealed, "phone-a", T0 + 301) is None
    assert ScanPass.open(b"t" * 32, sealed, "phone-a", T0 + 1) is None
    assert ScanPass.open(secret, sealed.replace("VEN-1", "VEN-2"), "phone-a", T0) is None


def test_id_last4_is_kept_salted_and_compared() -> None:
    stored = hash_last4("123X")
    assert "123X" not in stored and stored != hash_last4("123X")  # a fresh salt each time
    assert last4_matches(stored, "123x") and last4_matches(stored, " 123X ")
    assert not last4_matches(stored, "1234") and not last4_matches(None, "123X")
    assert not last4_matches("other$00$00", "123X")
    assert normal_last4("12a4") is None and normal_last4("12345") is None
    assert IdLast4().verify("M1", stored, "123X")
    assert not SmsCodeNotConfigured().verify("M1", stored, "123X")


def test_networks_and_flags() -> None:
    assert network_allows(None, "203.0.113.9") and network_allows("", "::1")
    assert network_allows("10.0.0.0/8, 192.168.1.0/24", "192.168.1.20")
    assert not network_allows("10.0.0.0/8", "203.0.113.9")
    assert not network_allows("not-a-network", "10.0.0.1")  # a bad list refuses
    assert review_flags(shared_phone=False, stream_down=False) is None
    assert review_flags(shared_phone=True, stream_down=True) == "shared_phone,stream_down"
