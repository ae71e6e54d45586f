"""The STUN/TURN servers a peer of ours is told to use: the static ones of HETANG_ICE_SERVERS,
and, when our coturn is configured, credentials minted for that peer (a venue, a user)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from passthrough.peer import IceSettings
from server.domain.turn import TurnSettings, mint


@dataclass(frozen=True)
class IceServers:
    """What RTCPeerConnection's iceServers takes, and when its minted credentials expire
    (None when nothing was minted)."""

    servers: tuple[dict[str, object], ...]
    expires_at: datetime | None


def static_servers(ice: IceSettings) -> list[dict[str, object]]:
    """HETANG_ICE_SERVERS (with HETANG_TURN_USERNAME/CREDENTIAL) as one entry, or none."""
    if not ice.servers:
        return []
    server: dict[str, object] = {"urls": list(ice.servers)}
    if ice.username is not None:
        server["username"] = ice.username
    if ice.credential is not None:
        server["credential"] = ice.credential
    return [server]


def ice_servers_for(ice: IceSettings, turn: TurnSettings, name: str, now: datetime) -> IceServers:
    """Our coturn with credentials minted for `name` first, then the static servers."""
    if not turn.enabled:
        return IceServers(tuple(static_servers(ice)), None)
    minted = mint(turn, name.replace(":", "_"), now)
    return IceServers((minted.as_ice_server(), *static_servers(ice)), minted.expires_at)
