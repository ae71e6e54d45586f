"""Which media engine carries the broadcasts: the built-in pass-through relay (the default, no
extra service) or Janus (HETANG_MEDIA=janus), an origin and its edges (HETANG_JANUS_URLS, the
origin first), with the ports the origin forwards to its edges on (HETANG_JANUS_FORWARD_PORTS)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from passthrough.ports import PortRange, parse_port_range

ENGINES = ("builtin", "janus")
DEFAULT_FORWARD_PORTS = PortRange(30000, 30999)
CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


@dataclass(frozen=True)
class MediaSettings:
    """The engine, and for Janus the HTTP API of the origin and of each edge."""

    engine: str = "builtin"
    janus_urls: tuple[str, ...] = ()
    forward_ports: PortRange = DEFAULT_FORWARD_PORTS
    # The region each instance serves (an organization's code, "" for any), from the URL's
    # fragment: `http://edge-1:8088/janus#cz-ld` serves the venues of cz-ld's subtree first.
    regions: tuple[str, ...] = ()

    @property
    def janus(self) -> bool:
        return self.engine == "janus"


def parse_janus_urls(raw: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """`http://origin:8088/janus,http://edge-1:8088/janus#cz-ld`: each an http(s) URL with a
    host, and after `#` the organization code of the region it serves (optional); the URLs and
    the regions."""
    urls, regions = [], []
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        url, _, region = part.partition("#")
        url = url.rstrip("/")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{url!r} is not an http:// or https:// URL of Janus's API")
        if region and not CODE.fullmatch(region):
            raise ValueError(f"{region!r} after # is not an organization code")
        urls.append(url)
        regions.append(region)
    if len(set(urls)) != len(urls):
        raise ValueError("a Janus URL is listed twice")
    return tuple(urls), tuple(regions)


def parse_media(env: Mapping[str, str]) -> MediaSettings:
    """HETANG_MEDIA, HETANG_JANUS_URLS and HETANG_JANUS_FORWARD_PORTS; ValueError names the
    variable that is wrong."""
    engine = (env.get("HETANG_MEDIA") or "builtin").strip().lower()
    if engine not in ENGINES:
        raise ValueError(f"HETANG_MEDIA must be one of {', '.join(ENGINES)}, not {engine!r}")
    try:
        urls, regions = parse_janus_urls(env.get("HETANG_JANUS_URLS") or "")
    except ValueError as error:
        raise ValueError(f"HETANG_JANUS_URLS: {error}") from None
    if engine == "janus" and not urls:
        raise ValueError("HETANG_JANUS_URLS is required with HETANG_MEDIA=janus (the origin first)")
    try:
        ports = parse_port_range(env.get("HETANG_JANUS_FORWARD_PORTS") or "")
    except ValueError as error:
        raise ValueError(f"HETANG_JANUS_FORWARD_PORTS: {error}") from None
    if ports is not None and (ports.last - ports.first < 1 or ports.first < 1024):
        raise ValueError("HETANG_JANUS_FORWARD_PORTS needs two ports or more, from 1024 up")
    return MediaSettings(engine, urls, ports or DEFAULT_FORWARD_PORTS, regions)
