"""One rule says what a device carries: playlists, audio access, as-run intake, emergencies
and reports all follow app.playout.scope, so they agree for every device (no HTTP here).

If one of them wrote its own version of the rule and the rule changed, the sets below would
stop agreeing. The rule depends on the network kind each broadcast and emergency was
published under (fm: village devices play only their village's; ip: every village cluster
also plays the commune's), never on the station's kind today, so each kind is checked, and
each kind switched after the fact.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session

from app import clock
from app.accounts.security import hash_device_token
from app.db import unit_of_work
from app.devices import service as devices
from app.devices.models import Device
from app.errors import NotFound
from app.playout import access, asrun, emergencies, playlists
from app.playout.models import AsRunEvent, Emergency
from app.reports import judging as reports
from app.schedule import network as network_service
from app.schedule import service as schedule
from app.schedule.models import Broadcast, BroadcastStatus
from app.segments.models import Segment
from app.stations import service as stations
from app.stations.models import Network, Station
from tests.helpers import make_station

DAY = date(2024, 3, 16)
MASTER_MS = 60_000


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _on_air(
    s: Session, *, station_id: int, code: str, hour: int, village_id: int | None = None
) -> Broadcast:
    b = schedule.create_broadcast(
        s,
        station_id=station_id,
        programme_code=code,
        starts_at=datetime(2024, 3, 16, hour, tzinfo=UTC),
        village_id=village_id,
    )
    b.status = BroadcastStatus.assembled.value
    b.master_sha256 = _sha(f"master {b.id}")
    b.master_duration_ms = MASTER_MS
    s.flush()
    return b


def _world(name: str, network: str, *, switch_to: str | None = None) -> dict[str, Any]:
    """A station of the given kind with its PC, a village PC (Thôn 1), a broadcast of each
    scope on DAY and emergencies for all, for Thôn 1 and for Thôn 2; `switch_to` changes its
    kind afterwards (from its next day: DAY's broadcasts keep the kind they were made under)."""
    ids = make_station(name, villages=2, network=network)
    other = make_station(f"{name} (láng giềng)", villages=1, network=network)
    sid, (v1, v2) = ids["station_id"], ids["village_ids"]
    now = clock.now()
    with unit_of_work() as s:
        station_pc, station_token = devices.create_device(s, name="PC đài", station_id=sid)
        village_pc, village_token = devices.create_device(
            s, name="PC thôn 1", station_id=sid, village_id=v1
        )
        broadcasts = {
            "cchc": _on_air(s, station_id=sid, code="cchc", hour=10),
            "thon1": _on_air(s, station_id=sid, code="village-weekly", hour=11, village_id=v1),
            "thon2": _on_air(s, station_id=sid, code="village-weekly", hour=12, village_id=v2),
            "elsewhere": _on_air(s, station_id=other["station_id"], code="cchc", hour=10),
        }
        programme = stations.get_programme(s, station_id=sid, code="cchc")
        segment = Segment(
            station_id=sid,
            programme_id=programme.id,
            title="Bão số 3",
            topic="emergency",
            script="Bão",
            status="approved",
        )
        s.add(segment)
        s.flush()
        alarms = {}
        for alarm, villages in (("everywhere", None), ("only-thon1", [v1]), ("only-thon2", [v2])):
            e = Emergency(
                station_id=sid,
                segment_id=segment.id,
                village_ids=villages,
                network=network,
                audio_sha256=_sha(f"emergency {name} {alarm}"),
                duration_ms=MASTER_MS,
                created_at=now,
                expires_at=now + timedelta(hours=1),
            )
            s.add(e)
            s.flush()
            alarms[alarm] = (e.id, e.audio_sha256)
        if switch_to is not None:
            network_service.set_network(
                s, station=s.get_one(Station, sid), network=Network(switch_to)
            )
        return {
            "devices": {
                "station": (station_pc.id, station_token),
                "village": (village_pc.id, village_token),
            },
            "broadcasts": {k: (b.id, b.master_sha256, b.starts_at) for k, b in broadcasts.items()},
            "emergencies": alarms,
        }


def _as_run_events(world: dict[str, Any], tag: str) -> list[dict[str, Any]]:
    """One plausible event for every broadcast and every emergency."""
    now = clock.now()
    events = []
    for name, (bid, sha, starts) in world["broadcasts"].items():
        events.append(
            {
                "event_id": f"{tag}-b-{name}",
                "broadcast_id": bid,
                "sha256": sha,
                "started_at": starts.isoformat(),
                "ended_at": (starts + timedelta(milliseconds=MASTER_MS)).isoformat(),
                "status": "played",
            }
        )
    for name, (eid, sha) in world["emergencies"].items():
        events.append(
            {
                "event_id": f"{tag}-e-{name}",
                "emergency_id": eid,
                "sha256": sha,
                "started_at": (now - timedelta(minutes=2)).isoformat(),
                "ended_at": (now - timedelta(minutes=1)).isoformat(),
                "status": "played",
            }
        )
    return events


def _what_each_consumer_says(world: dict[str, Any], which: str) -> dict[str, set[str]]:
    device_id, token = world["devices"][which]
    token_hash = hash_device_token(token)
    by_bid = {bid: name for name, (bid, _sha, _starts) in world["broadcasts"].items()}
    by_eid = {eid: name for name, (eid, _sha) in world["emergencies"].items()}
    says: dict[str, set[str]] = {}

    playlist = playlists.device_playlist(token_hash=token_hash, day=DAY)
    says["playlist"] = {by_bid[i.broadcast_id] for i in playlist.items}
    _state, active = emergencies.device_emergencies(token_hash=token_hash)
    says["emergency poll"] = {by_eid[e.id] for e in active}

    with unit_of_work(write=False) as s:
        device = s.get_one(Device, device_id)
        fetchable = set()
        for name, sha in [(n, b[1]) for n, b in world["broadcasts"].items()] + [
            (n, e[1]) for n, e in world["emergencies"].items()
        ]:
            try:
                access.check_can_fetch(s, device, sha)
            except NotFound:
                continue
            fetchable.add(name)
    says["audio access (broadcasts)"] = fetchable & set(world["broadcasts"])
    says["audio access (emergencies)"] = fetchable & set(world["emergencies"])

    with unit_of_work() as s:
        state = devices.device_by_token(s, token_hash=token_hash)
        result = asrun.record_as_run(
            s, device=state, body=_as_run_events(world, which), telemetry=devices.Telemetry()
        )
    accepted = set(result.accepted)
    says["as-run (broadcasts)"] = {n for n in world["broadcasts"] if f"{which}-b-{n}" in accepted}
    says["as-run (emergencies)"] = {
        n for n in world["emergencies"] if f"{which}-e-{n}" in accepted
    }

    # Reports count only the events of devices that carry the broadcast: give this device
    # an event for every broadcast, as if the intake had let it through, and see which count.
    marker = 7_000 + device_id
    with unit_of_work() as s:
        for name, (bid, sha, starts) in world["broadcasts"].items():
            s.add(
                AsRunEvent(
                    event_id=f"{which}-raw-{name}",
                    device_id=device_id,
                    broadcast_id=bid,
                    sha256=sha,
                    started_at=starts,
                    ended_at=starts + timedelta(milliseconds=marker),
                    status="failed",
                    received_at=clock.now(),
                )
            )
        s.flush()
        rows = [s.get_one(Broadcast, bid) for bid, _sha, _starts in world["broadcasts"].values()]
        counted = reports.events_by_broadcast(s, rows)
    says["reports"] = {
        by_bid[bid]
        for bid, events in counted.items()
        if any(e.ended_at - e.started_at == timedelta(milliseconds=marker) for e in events)
    }
    return says


# What each device carries, by the kind its broadcasts and emergencies were published under:
# (broadcasts, emergencies).
EXPECTED = {
    "fm": {
        # The station's PC: the commune's programmes, every emergency of its station (the
        # transmitter is how the villages hear it).
        "station": ({"cchc"}, {"everywhere", "only-thon1", "only-thon2"}),
        # A village PC: its village's programmes, emergencies for all or for its village.
        "village": ({"thon1"}, {"everywhere", "only-thon1"}),
    },
    "ip": {
        # The station's PC: the commune's programmes, as under fm; an emergency for some
        # villages plays on those villages' clusters only.
        "station": ({"cchc"}, {"everywhere"}),
        # A village cluster: the commune's programmes as well as its own village's.
        "village": ({"cchc", "thon1"}, {"everywhere", "only-thon1"}),
    },
}


@pytest.mark.parametrize(
    ("network", "switch_to", "recorded"),
    [
        ("fm", None, "fm"),
        ("ip", None, "ip"),
        # The station's kind today does not matter: what the broadcasts and emergencies were
        # published under does (the switch applies from the station's next day on).
        ("fm", "ip", "fm"),
        ("ip", "fm", "ip"),
    ],
)
def test_every_consumer_follows_the_one_scope_rule(
    database_url: str, network: str, switch_to: str | None, recorded: str
) -> None:
    world = _world(f"Xã {network}", network, switch_to=switch_to)
    for which, (carried, alarms) in EXPECTED[recorded].items():
        says = _what_each_consumer_says(world, which)
        assert says == {
            "playlist": carried,
            "audio access (broadcasts)": carried,
            "as-run (broadcasts)": carried,
            "reports": carried,
            "emergency poll": alarms,
            "audio access (emergencies)": alarms,
            "as-run (emergencies)": alarms,
        }, which

    # The nightly count: both devices have a playlist with items that day, none the next.
    with unit_of_work(write=False) as s:
        stations_of_world = [world_station(world)]
        assert playlists.count_playlists(s, day=DAY, station_ids=stations_of_world) == 2
        assert (
            playlists.count_playlists(
                s, day=DAY + timedelta(days=1), station_ids=stations_of_world
            )
            == 0
        )


def world_station(world: dict[str, Any]) -> int:
    device_id, _token = world["devices"]["station"]
    with unit_of_work(write=False) as s:
        return s.get_one(Device, device_id).station_id
