"""A broadcast on an edge of the Janus tree, and forgotten there when the edge dies: the edge
takes the origin's feed as a VideoRoom remote publisher listening on a port of
HETANG_JANUS_FORWARD_PORTS (RTP, and RTCP on the next), and the origin forwards the feed there
(deploy/janus/NOTES.md, section 3)."""

from __future__ import annotations

import contextlib
import logging
import secrets

import aiohttp

from passthrough.ports import PortRange
from server.rtc import videoroom
from server.rtc.janus import JanusError
from server.rtc.janus_state import JanusBroadcast
from server.rtc.janus_tree import Instance, Tree

log = logging.getLogger(__name__)

FORWARD_TRIES = 8  # ports tried on an edge before giving up (another lesson may hold one)


async def feed_on(tree: Tree, broadcast: JanusBroadcast, edge: Instance, ports: PortRange) -> int:
    """The feed venues subscribe to on this instance: the publisher itself on the origin, on an
    edge its remote publisher (made the first time a venue of it needs one)."""
    if edge is tree.origin:
        return broadcast.feed
    known = broadcast.edge_feeds.get(edge.url)
    if known is not None:
        return known
    control = edge.handle()
    with contextlib.suppress(JanusError):  # 427: the room is there already
        await videoroom.create_room(control, broadcast.room)
    for _ in range(FORWARD_TRIES):
        port = forward_port(ports)
        try:
            feed = await videoroom.add_remote_publisher(
                control, broadcast.room, edge.address, port, broadcast.streams
            )
        except JanusError as error:
            log.info("%s could not take port %d: %s", edge.name, port, error.reason)
            continue
        await videoroom.publish_remotely(
            tree.origin.handle(), broadcast.room, broadcast.feed, edge.name, edge.address, port
        )
        broadcast.edge_feeds[edge.url] = feed
        return feed
    raise JanusError(0, f"{edge.name} had no free port to receive the broadcast on")


async def forget_edge(tree: Tree, broadcast: JanusBroadcast, edge: Instance) -> tuple[str, ...]:
    """A dead edge: the origin stops forwarding to it, and its venues' subscriptions and offers
    are dropped; the codes of those venues."""
    if broadcast.edge_feeds.pop(edge.url, None) is not None:
        with contextlib.suppress(JanusError, aiohttp.ClientError, TimeoutError):
            await videoroom.unpublish_remotely(
                tree.origin.handle(), broadcast.room, broadcast.feed, edge.name
            )
    venues = tuple(code for code, s in broadcast.subscriptions.items() if s.edge is edge)
    for code in venues:
        del broadcast.subscriptions[code]
    for token in [t for t, s in broadcast.offers.items() if s.edge is edge]:
        del broadcast.offers[token]
    return venues


def forward_port(ports: PortRange) -> int:
    """An even port of the range (RTP; the next one carries RTCP)."""
    span = (ports.last - ports.first) // 2
    return ports.first + 2 * secrets.randbelow(span)
