"""Janus VideoRoom operations the media backend needs (issue 17), on server.rtc.janus: a room
per broadcast, the operator's page publishing into it, and each venue subscribing (Janus makes
the offer, the agent answers)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from server.rtc.janus import JanusHandle, Jsep


@dataclass(frozen=True)
class Published:
    """The publisher's id in the room (what venues subscribe to) and Janus's answer."""

    feed: int
    answer: Jsep
    streams: list[dict[str, Any]]


async def create_room(handle: JanusHandle, room: int, bitrate_bps: int = 1_500_000) -> None:
    """A room for one broadcast: one publisher, VP8 and Opus, as the operator's page sends."""
    await handle.request(
        {
            "request": "create",
            "room": room,
            "publishers": 1,
            "videocodec": "vp8",
            "audiocodec": "opus",
            "bitrate": bitrate_bps,
            "notify_joining": False,
        }
    )


async def destroy_room(handle: JanusHandle, room: int) -> None:
    await handle.request({"request": "destroy", "room": room})


async def room_exists(handle: JanusHandle, room: int) -> bool:
    return bool((await handle.request({"request": "exists", "room": room}))["exists"])


async def publish(handle: JanusHandle, room: int, display: str, offer: Jsep) -> Published:
    """Join as the room's publisher and publish the offer; the answer, once negotiated."""
    joined = await handle.message(
        {"request": "join", "ptype": "publisher", "room": room, "display": display}
    )
    reply = await handle.message({"request": "publish", "audio": True, "video": True}, offer)
    if reply.jsep is None:
        raise ValueError("Janus answered the publisher without a session description")
    return Published(int(joined.data["id"]), reply.jsep, list(reply.data.get("streams", [])))


async def subscribe(
    handle: JanusHandle, room: int, feed: int, mids: list[str] | None = None
) -> Jsep:
    """Join as a subscriber of the feed (of these of its streams, or all); Janus's offer, for the
    venue to answer."""
    streams: list[dict[str, Any]] = (
        [{"feed": feed, "mid": mid} for mid in mids] if mids else [{"feed": feed}]
    )
    reply = await handle.message(
        {"request": "join", "ptype": "subscriber", "room": room, "streams": streams}
    )
    if reply.jsep is None:
        raise ValueError("Janus offered no session description to the subscriber")
    return reply.jsep


async def start(handle: JanusHandle, answer: Jsep) -> None:
    """The venue's answer to Janus's offer: the media starts."""
    await handle.message({"request": "start"}, answer)


async def participants(handle: JanusHandle, room: int) -> list[dict[str, Any]]:
    data = await handle.request({"request": "listparticipants", "room": room})
    return list(data.get("participants", []))


# The relay tree (deploy/janus/NOTES.md, section 3): an edge takes the origin's feed as a
# "remote publisher" listening on one port (RTP, and RTCP on the next), which the origin then
# forwards the feed to. Venues subscribe to it on the edge exactly as to a local feed.
REMOTE_STREAM_KEYS = ("type", "mindex", "mid", "codec", "simulcast", "svc")


async def add_remote_publisher(
    handle: JanusHandle, room: int, iface: str, port: int, streams: list[dict[str, Any]]
) -> int:
    """On an edge: a publisher fed over RTP on iface:port; its id (the venues' feed there)."""
    data = await handle.request(
        {
            "request": "add_remote_publisher",
            "room": room,
            "display": "origin",
            "iface": iface,
            "port": port,
            "rtcp_port": port + 1,
            "streams": [
                {key: stream[key] for key in REMOTE_STREAM_KEYS if key in stream}
                for stream in streams
            ],
        }
    )
    return int(data["id"])


async def remove_remote_publisher(handle: JanusHandle, room: int, feed: int) -> None:
    await handle.request({"request": "remove_remote_publisher", "room": room, "id": feed})


async def publish_remotely(
    handle: JanusHandle, room: int, feed: int, remote_id: str, host: str, port: int
) -> None:
    """On the origin: forward the feed to an edge's remote publisher at host:port."""
    await handle.request(
        {
            "request": "publish_remotely",
            "room": room,
            "publisher_id": feed,
            "remote_id": remote_id,
            "host": host,
            "port": port,
            "rtcp_port": port + 1,
        }
    )


async def unpublish_remotely(handle: JanusHandle, room: int, feed: int, remote_id: str) -> None:
    await handle.request(
        {
            "request": "unpublish_remotely",
            "room": room,
            "publisher_id": feed,
            "remote_id": remote_id,
        }
    )
