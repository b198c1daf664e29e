"""sessions (pure): grants, extension, sweep of expired/idle sessions and orphans, reconcile at start-up."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from keliu.gate import AllowClient, ClientState, RevokeClient
from portal.core import sessions
from portal.core.sessions import Active, EndSession, Policy, TouchSession

NOW = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)
POLICY = Policy(session_s=86400, idle_s=3600, reauth_s=7 * 86400)
DEV = {"aa:aa:aa:aa:aa:01": "dev1", "aa:aa:aa:aa:aa:02": "dev2", "aa:aa:aa:aa:aa:03": "dev3"}


def tactive(i: int, *, until: float = 3600, idle: float = 0, up: int = 0, down: int = 0) -> Active:
    return Active(i, f"dev{i}", f"10.0.0.{i}", NOW + timedelta(seconds=until), NOW - timedelta(seconds=idle), up, down)


def tclient(i: int, up: int = 0, down: int = 0) -> ClientState:
    return ClientState(f"aa:aa:aa:aa:aa:0{i}", f"10.0.0.{i}", 100.0, up, down)


def test_grant_and_allow() -> None:
    until = sessions.grant_until(POLICY, NOW)
    assert until == NOW + timedelta(days=1)
    assert sessions.allow("m", "1.2.3.4", until) == AllowClient("m", "1.2.3.4", until.timestamp())


def test_seconds_left_never_negative() -> None:
    assert sessions.seconds_left(NOW - timedelta(seconds=5), NOW) == 0
    assert sessions.seconds_left(NOW + timedelta(seconds=90), NOW) == 90


def test_extend_is_capped_at_one_session() -> None:
    assert sessions.extend(NOW + timedelta(hours=1), NOW, 60, POLICY) == NOW + timedelta(hours=2)
    assert sessions.extend(NOW + timedelta(hours=23, minutes=30), NOW, 60, POLICY) == NOW + timedelta(days=1)
    assert sessions.extend(NOW - timedelta(hours=1), NOW, 30, POLICY) == NOW + timedelta(minutes=30)


def test_may_reauth() -> None:
    assert sessions.may_reauth(NOW + timedelta(seconds=1), NOW)
    assert not sessions.may_reauth(NOW, NOW)
    assert not sessions.may_reauth(None, NOW)


def test_sweep_quiet_session_within_idle_is_kept() -> None:
    assert sessions.sweep([tactive(1, idle=60)], [tclient(1)], DEV.__getitem__, NOW, POLICY) == []


def test_sweep_expired_is_ended_and_revoked() -> None:
    out = sessions.sweep([tactive(1, until=0)], [tclient(1)], DEV.__getitem__, NOW, POLICY)
    assert out == [EndSession(1, "expired"), RevokeClient("aa:aa:aa:aa:aa:01")]


def test_sweep_idle_is_ended_and_revoked() -> None:
    out = sessions.sweep([tactive(1, idle=3600)], [tclient(1)], DEV.__getitem__, NOW, POLICY)
    assert out == [EndSession(1, "idle"), RevokeClient("aa:aa:aa:aa:aa:01")]


def test_sweep_traffic_keeps_an_old_session_alive() -> None:
    out = sessions.sweep([tactive(1, idle=7200, up=10, down=20)], [tclient(1, 15, 900)], DEV.__getitem__, NOW,
                         POLICY)
    assert out == [TouchSession(1, NOW, 15, 900)]


def test_sweep_revokes_orphans_and_ignores_sessions_unknown_to_gate() -> None:
    out = sessions.sweep([tactive(2)], [tclient(3)], DEV.__getitem__, NOW, POLICY)
    assert out == [RevokeClient("aa:aa:aa:aa:aa:03")]


def test_sweep_expired_session_without_gate_client_is_only_ended() -> None:
    assert sessions.sweep([tactive(2, until=-5)], [], DEV.__getitem__, NOW, POLICY) == [EndSession(2, "expired")]


def test_reconcile_keeps_only_clients_with_open_sessions() -> None:
    out = sessions.reconcile([tactive(1, until=600), tactive(2, until=-1)], [tclient(1), tclient(2), tclient(3)],
                             DEV.__getitem__, NOW)
    assert out == [AllowClient("aa:aa:aa:aa:aa:01", "10.0.0.1", (NOW + timedelta(seconds=600)).timestamp())]


def test_sweep_revokes_a_gate_client_at_another_address_than_its_session() -> None:
    clone = ClientState("aa:aa:aa:aa:aa:01", "10.0.0.99", 100.0, 5, 5)  # the session's MAC, another address
    assert sessions.sweep([tactive(1, idle=60)], [clone], DEV.__getitem__, NOW, POLICY) == [
        RevokeClient("aa:aa:aa:aa:aa:01")]
    # its bytes are not the session's: an old quiet session ends idle all the same
    assert sessions.sweep([tactive(1, idle=3600)], [clone], DEV.__getitem__, NOW, POLICY) == [
        EndSession(1, "idle"), RevokeClient("aa:aa:aa:aa:aa:01")]


def test_reconcile_keeps_a_client_only_at_its_sessions_address() -> None:
    clone = ClientState("aa:aa:aa:aa:aa:01", "10.0.0.99", 100.0)
    assert sessions.reconcile([tactive(1, until=600)], [clone], DEV.__getitem__, NOW) == []
