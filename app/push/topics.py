"""The push broker's topics and messages (DESIGN.md "Processes", MQTT).

Topics carry ids only; a message says what changed and its version, never any content: the
device fetches the details over HTTPS as it always did.

* ``loaxa/v1/stations/{station}/alert`` (retained): the station's emergency or live state
  changed. Retained, so a device that (re)connects learns of the current state at once.
* ``loaxa/v1/stations/{station}/playlist``: the commune's day playlists changed.
* ``loaxa/v1/stations/{station}/villages/{village}/playlist``: one village's changed.
* ``loaxa/v1/stations/{station}/devices/{device}``: this device's token ended.

A message is JSON: ``{"v": 1, "kind": "alert" | "playlist" | "token", "version": n, …ids}``.
"""

from __future__ import annotations

import json
from typing import Any, Literal

PREFIX = "loaxa/v1"
Kind = Literal["alert", "playlist", "token"]
KINDS: tuple[Kind, ...] = ("alert", "playlist", "token")


def station_topic(station_id: int, what: str) -> str:
    return f"{PREFIX}/stations/{station_id}/{what}"


def alert_topic(station_id: int) -> str:
    return station_topic(station_id, "alert")


def playlist_topic(station_id: int, village_id: int | None = None) -> str:
    if village_id is None:
        return station_topic(station_id, "playlist")
    return station_topic(station_id, f"villages/{village_id}/playlist")


def device_topic(station_id: int, device_id: int) -> str:
    return station_topic(station_id, f"devices/{device_id}")


def device_topics(station_id: int, village_id: int | None, device_id: int) -> list[str]:
    """Everything one device may subscribe to (and nothing else: the broker's ACL)."""
    topics = [alert_topic(station_id), playlist_topic(station_id)]
    if village_id is not None:
        topics.append(playlist_topic(station_id, village_id))
    topics.append(device_topic(station_id, device_id))
    return topics


def message(kind: Kind, version: int, **ids: int | None) -> str:
    body: dict[str, Any] = {"v": 1, "kind": kind, "version": version}
    body.update({k: v for k, v in ids.items() if v is not None})
    return json.dumps(body, separators=(",", ":"))
