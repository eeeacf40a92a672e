"""The demo commune: Xuân Phúc (Như Thanh, Thanh Hóa), from its 2024 CCHC plan."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import clock
from app.accounts import service as accounts
from app.accounts.models import Role, User
from app.audio import service as audio
from app.db import unit_of_work
from app.devices.models import Device
from app.schedule.models import Broadcast, BroadcastStatus
from app.stations import service as stations
from app.stations.models import Programme, Station, Village

ACTIVE_STATUSES = (BroadcastStatus.planned.value, BroadcastStatus.assembled.value)

STATION_NAME = "Xuân Phúc"
STATION_HOTLINE = "0237 3868 115"  # illustrative; the plan names no number
VILLAGE_COUNT = 8


@dataclass
class SeedResult:
    station_id: int
    created: list[str]
    admin_password: str | None  # set only when generated now; shown once


def seed_demo(session: Session) -> SeedResult:
    """Load the demo commune; a second run finds everything there and changes nothing."""
    created: list[str] = []
    station = session.scalar(select(Station).where(Station.name == STATION_NAME))
    if station is None:
        station = stations.create_station(session, name=STATION_NAME, hotline=STATION_HOTLINE)
        created.append(
            f"station {station.name} (id {station.id}) with programmes cchc, village-weekly"
        )
    existing = set(session.scalars(select(Village.name).where(Village.station_id == station.id)))
    for n in range(1, VILLAGE_COUNT + 1):
        name = f"Thôn {n}"
        if name not in existing:
            stations.create_village(session, station=station, name=name)
            created.append(f"village {name}")
    generated: str | None = None
    if session.scalar(select(User.id).where(User.username == "admin")) is None:
        password = os.environ.get("LOAXA_ADMIN_PASSWORD")
        if not password:
            password = generated = secrets.token_urlsafe(12)
        accounts.create_user(session, username="admin", password=password, role=Role.admin)
        created.append("user admin (role admin)")
    return SeedResult(station_id=station.id, created=created, admin_password=generated)


# --- Sample history (`seed-demo --sample-history`): made-up, for demonstrations only ---------
# Never loaded by plain `seed-demo`: a real commune's report must not count invented airings.

EDITOR_NAME, APPROVER_NAME = "bientap", "vanphong"
ONLINE_DEVICE = "Máy phát trung tâm"  # the station PC
CLUSTER_PREFIX = "Loa "  # each village's loudspeaker cluster: "Loa Thôn 1", ...
OFFLINE_VILLAGE = "Thôn 3"  # its cluster has not been seen for three days
OFFLINE_DEVICE = CLUSTER_PREFIX + OFFLINE_VILLAGE
HISTORY_MONTHS = 11  # as-run history for the months before this one (into last year)
MISSED_BACK, SHORT_BACK = 6, 3  # one CCHC month missed, one aired short (months ago)
# One month whose column aired at the station but not on one village's cluster (power cut):
# the report's "aired in 7 of 8 villages; not in Thôn 5".
SILENT_VILLAGE, SILENT_BACK = "Thôn 5", 2
TARGET_MS = 11 * 60_000  # this month's column: fill to at least 11 minutes

_OPENING = "Kính thưa bà con nhân dân trong xã. "
# (title, topic, sentences): each script repeats its sentences a few times, as the
# commune's announcements do, so that espeak-ng reads two to three minutes of it.
SAMPLE_SEGMENTS: list[tuple[str, str, list[str]]] = [
    (
        "Kết quả cải cách hành chính tháng này",
        "progress",
        [
            "Ủy ban nhân dân xã Xuân Phúc thông báo kết quả thực hiện cải cách hành chính.",
            "Bộ phận tiếp nhận và trả kết quả đã giải quyết đúng hạn chín mươi tám phần trăm "
            "hồ sơ của người dân và doanh nghiệp.",
            "Xã tiếp tục công khai các thủ tục hành chính tại trụ sở và trên trang thông tin "
            "điện tử của xã.",
        ],
    ),
    (
        "Hướng dẫn nộp hồ sơ trực tuyến",
        "procedures",
        [
            "Người dân có thể nộp hồ sơ đăng ký khai sinh, kết hôn và chứng thực qua Cổng "
            "dịch vụ công quốc gia.",
            "Cán bộ bộ phận một cửa sẵn sàng hướng dẫn bà con tạo tài khoản và nộp hồ sơ "
            "vào giờ hành chính các ngày trong tuần.",
            "Kết quả được trả tại nhà qua dịch vụ bưu chính công ích nếu bà con có yêu cầu.",
        ],
    ),
    (
        "Biểu dương cán bộ một cửa tận tình",
        "commendation",
        [
            "Trong tháng qua, xã nhận được nhiều ý kiến khen ngợi tinh thần phục vụ của cán "
            "bộ bộ phận tiếp nhận và trả kết quả.",
            "Ủy ban nhân dân xã biểu dương các đồng chí đã giải quyết hồ sơ sớm hơn hẹn, "
            "hướng dẫn tận tình cho người cao tuổi.",
            "Xã mong tiếp tục nhận được ý kiến đóng góp của bà con để phục vụ ngày càng tốt hơn.",
        ],
    ),
    (
        "Tiếp nhận phản ánh, kiến nghị của người dân",
        "citizen-feedback",
        [
            "Mọi phản ánh, kiến nghị về thủ tục hành chính, bà con gửi về hòm thư góp ý đặt "
            "tại trụ sở Ủy ban nhân dân xã.",
            "Bà con cũng có thể gọi đường dây nóng của xã trong giờ hành chính.",
            "Mỗi phản ánh đều được ghi nhận, trả lời công khai trong vòng mười ngày làm việc.",
        ],
    ),
    (
        "Lịch tiếp công dân của Chủ tịch xã",
        "disclosure",
        [
            "Chủ tịch Ủy ban nhân dân xã tiếp công dân vào sáng thứ năm hằng tuần tại trụ sở "
            "Ủy ban.",
            "Bà con có nhu cầu gặp lãnh đạo xã đăng ký trước tại bộ phận một cửa.",
        ],
    ),
    (
        "Chỉ số hài lòng của người dân năm nay",
        "indices",
        [
            "Kết quả khảo sát cho thấy mức độ hài lòng của người dân đối với sự phục vụ của "
            "cơ quan hành chính xã tăng so với năm trước.",
            "Xã sẽ tiếp tục rút ngắn thời gian giải quyết hồ sơ và tăng cường nộp hồ sơ trực "
            "tuyến.",
        ],
    ),
]


def _script(sentences: list[str], repeats: int) -> str:
    body = " ".join(sentences)
    return _OPENING + " ".join([body] * repeats) + " Xin trân trọng cảm ơn bà con."


@dataclass
class HistoryResult:
    created: list[str]


def _demo_user(session: Session, name: str, role: Role, station_id: int) -> User:
    user = session.scalar(select(User).where(User.username == name))
    if user is None:
        # Made-up staff of the sample history; an admin sets their passwords to use them.
        user = accounts.create_user(
            session,
            username=name,
            password=secrets.token_urlsafe(16),
            role=role,
            station_id=station_id,
        )
    return user


def seed_sample_history(station_id: int) -> HistoryResult:
    """A commune in use: segments drafted with espeak-ng, this month assembled, past airings.

    Runs after `seed_demo`. Idempotent: segments are found by title, the rundown is set only
    while empty, an unchanged rundown reuses its master, and the devices mark the history
    (as-run, statuses, warnings) as loaded. Uses the same services as the API; the as-run
    events are written as the playout agents would have reported them.
    """
    from app.schedule import assembly
    from app.schedule import service as schedule
    from app.schedule.planning import plan_year
    from app.segments import service as segments
    from app.segments.models import Segment, SegmentStatus
    from app.tts import service as tts

    created: list[str] = []
    now = clock.now()
    with unit_of_work() as session:
        station = session.get_one(Station, station_id)
        tz = ZoneInfo(station.timezone)
        this_month = now.astimezone(tz).strftime("%Y-%m")
        editor = _demo_user(session, EDITOR_NAME, Role.editor, station_id)
        approver = _demo_user(session, APPROVER_NAME, Role.approver, station_id)
        year = now.astimezone(tz).year
        # Last year too when this year has too few months behind it for a history.
        for planned_year in (year - 1, year) if int(this_month[5:]) <= HISTORY_MONTHS else (year,):
            result = plan_year(session, station_id=station_id, year=planned_year)
            if result.created:
                created.append(f"{result.created} broadcasts planned for {planned_year}")
        editor_id, approver_id = editor.id, approver.id
    ids: list[int] = []
    for n, (title, topic, sentences) in enumerate(SAMPLE_SEGMENTS):
        with unit_of_work() as session:
            editor = session.get_one(User, editor_id)
            segment = session.scalar(
                select(Segment).where(Segment.station_id == station_id, Segment.title == title)
            )
            if segment is None:
                segment = segments.create_segment(
                    session,
                    user=editor,
                    title=title,
                    programme="cchc",
                    topic=topic,
                    script=_script(sentences, repeats=7 if n < 4 else 1),
                    target_month=this_month,
                )
                created.append(f"segment {title!r}")
            segment_id, has_audio, status = segment.id, segment.audio_id, segment.status
        ids.append(segment_id)
        if has_audio is None:
            tts.draft_segment_audio(
                segment_id=segment_id, user=_detached(editor_id), engine="espeak"
            )
        if status == SegmentStatus.draft.value:
            with unit_of_work() as session:
                editor = session.get_one(User, editor_id)
                seg = segments.get_segment(session, segment_id, user=editor, for_update=True)
                approver = session.get_one(User, approver_id)
                segments.submit_segment(session, user=editor, segment=seg)
                # The last one waits for the approver: the home page's to-do list.
                if n < len(SAMPLE_SEGMENTS) - 1:
                    segments.approve_segment(session, user=approver, segment=seg)
    with unit_of_work() as session:
        approver = session.get_one(User, approver_id)
        column = _cchc_broadcast(session, station_id, this_month)
        if column is not None and column.status in schedule.ACTIVE:
            if not assembly.rundown_view(session, column).compliant:
                chosen = _fill_to_window(session, column, ids[:-1])
                schedule.set_rundown(session, broadcast=column, segment_ids=chosen, actor=approver)
                created.append(f"rundown of {this_month}'s CCHC column")
            column_id: int | None = column.id
        else:
            column_id = None
    master: str | None = None
    if column_id is not None:
        view = assembly.assemble_broadcast(column_id, actor_id=approver_id)
        master = view.master_sha256
    with unit_of_work() as session:
        if session.scalar(select(Device.id).where(Device.name == ONLINE_DEVICE)) is None:
            column = session.get(Broadcast, column_id) if column_id is not None else None
            created += _past_airings(
                session,
                station_id,
                this_month,
                master or "0" * 64,
                now,
                master_ms=column.master_duration_ms if column is not None else None,
            )
            if column is not None and column.master_sha256:
                created += _past_rundowns(session, column, approver_id, editor_id, this_month)
    return HistoryResult(created=created)


def _past_rundowns(
    session: Session, column: Broadcast, approver_id: int, editor_id: int, this_month: str
) -> list[str]:
    """Each past CCHC column's rundown and master: segments of its own month (read by the
    same machine voice as this month's, so they share its audio), approved before it
    aired, in the order of this month's column; the master is the one the as-run history
    reports as played. So the report's topics and counts, and each broadcast's page, are
    those of a column that really went through the month's work."""
    from app.schedule.models import RundownItem
    from app.schedule.service import rundown_segment_ids
    from app.segments.models import Segment, SegmentStatus

    order = [session.get_one(Segment, sid) for sid in rundown_segment_ids(session, column.id)]
    past = session.scalars(
        select(Broadcast).where(
            Broadcast.station_id == column.station_id,
            Broadcast.programme_id == column.programme_id,
            Broadcast.village_id.is_(None),
            Broadcast.local_month >= months_ago(this_month, HISTORY_MONTHS),
            Broadcast.local_month < this_month,
            Broadcast.status.in_((BroadcastStatus.aired.value, BroadcastStatus.missed.value)),
        )
    ).all()
    for b in past:
        year, month = int(b.local_month[:4]), int(b.local_month[5:])
        approved_at = b.starts_at - timedelta(days=6)
        for position, model in enumerate(order):
            segment = Segment(
                station_id=b.station_id,
                programme_id=b.programme_id,
                title=f"{model.title} – tháng {month}/{year}",
                topic=SAMPLE_SEGMENTS[(position + month) % len(SAMPLE_SEGMENTS)][1],
                script=model.script,
                target_month=b.local_month,
                status=SegmentStatus.approved.value,
                audio_id=model.audio_id,
                created_by_id=editor_id,
                approved_by_id=approver_id,
                created_at=approved_at - timedelta(days=3),
                updated_at=approved_at,
                submitted_at=approved_at - timedelta(days=1),
                approved_at=approved_at,
            )
            session.add(segment)
            session.flush()
            session.add(RundownItem(broadcast_id=b.id, position=position, segment_id=segment.id))
        b.rundown_set_by_id = approver_id
        b.master_sha256, b.master_duration_ms = column.master_sha256, column.master_duration_ms
        b.master_key, b.cue_sheet = column.master_key, column.cue_sheet
        b.assembled_at = b.starts_at - timedelta(days=2)
    session.flush()
    return [f"rundowns of {len(past)} past CCHC columns ({len(past) * len(order)} segments)"]


def months_ago(month: str, n: int) -> str:
    """ "2024-03" minus n months."""
    index = int(month[:4]) * 12 + int(month[5:]) - 1 - n
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _detached(user_id: int) -> User:
    with unit_of_work(write=False) as session:
        user = session.get_one(User, user_id)
        session.expunge(user)
    return user


def _cchc_broadcast(session: Session, station_id: int, month: str) -> Broadcast | None:
    return session.scalar(
        select(Broadcast)
        .join(Programme, Programme.id == Broadcast.programme_id)
        .where(
            Broadcast.station_id == station_id,
            Programme.code == stations.CCHC,
            Broadcast.local_month == month,
            Broadcast.status != BroadcastStatus.cancelled.value,
        )
    )


def _fill_to_window(session: Session, broadcast: Broadcast, segment_ids: list[int]) -> list[int]:
    """The first segments whose total (with intro, outro and gaps) reaches TARGET_MS."""
    from app.audio.models import AudioAsset
    from app.schedule import assembly
    from app.schedule.service import PlannedItem
    from app.segments.models import Segment

    programme = session.get_one(Programme, broadcast.programme_id)
    fixed = [
        PlannedItem(kind, kind, None, t.sha256, t.duration_ms)
        for kind, t in zip(
            ("intro", "outro"), audio.programme_templates(programme.code), strict=True
        )
        if t is not None
    ]
    durations = dict(
        session.execute(
            select(Segment.id, AudioAsset.duration_ms)
            .join(AudioAsset, AudioAsset.id == Segment.audio_id)
            .where(Segment.id.in_(segment_ids))
        )
        .tuples()
        .all()
    )
    chosen: list[int] = []
    for sid in segment_ids:
        if sid not in durations:
            continue
        chosen.append(sid)
        items = fixed + [PlannedItem("segment", "", s, None, durations[s]) for s in chosen]
        if assembly.total_ms(items) >= min(TARGET_MS, programme.max_duration_ms):
            break
    return chosen


def _past_airings(
    session: Session,
    station_id: int,
    this_month: str,
    sha: str,
    now: datetime,
    *,
    master_ms: int | None = None,
) -> list[str]:
    """The station PC and a cluster in every village (one offline), as-run events of the
    past months, statuses, warnings.

    The station is on an ``ip`` network: each village's cluster carries the commune's
    column as well as the village's own broadcasts, so the report shows each month's
    reach. The devices were set up before the history begins.
    """
    from app.devices import service as devices
    from app.playout.models import AsRunEvent
    from app.schedule import warnings as schedule_warnings

    created: list[str] = []
    villages = list(
        session.scalars(
            select(Village).where(Village.station_id == station_id).order_by(Village.id)
        )
    )
    installed = now - timedelta(days=31 * (HISTORY_MONTHS + 1))
    online, _token = devices.create_device(session, name=ONLINE_DEVICE, station_id=station_id)
    clusters: dict[int, Device] = {}
    for village in villages:
        name = CLUSTER_PREFIX + village.name
        clusters[village.id], _token = devices.create_device(
            session, name=name, station_id=station_id, village_id=village.id
        )
    for device in (online, *clusters.values()):
        device.created_at = installed
        # Seen just now (not at the history's `now`, taken before the minutes of reading the
        # scripts aloud): the clusters are online when the demo starts.
        device.last_seen_at = device.last_playlist_at = clock.now() - timedelta(minutes=1)
        device.agent_version, device.free_disk_bytes = "1.0.0", 48 * 1024**3
    offline = next(d for d in clusters.values() if d.name == OFFLINE_DEVICE)
    offline.last_seen_at = offline.last_playlist_at = now - timedelta(days=3, hours=2)
    offline.free_disk_bytes = 3 * 1024**3
    silent = next(v.id for v in villages if v.name == SILENT_VILLAGE)
    created.append(
        f"devices {ONLINE_DEVICE!r} and {len(clusters)} village clusters "
        f"({OFFLINE_DEVICE!r} offline)"
    )
    past = list(
        session.scalars(
            select(Broadcast)
            .where(
                Broadcast.station_id == station_id,
                Broadcast.local_month >= months_ago(this_month, HISTORY_MONTHS),
                Broadcast.local_month < this_month,
                Broadcast.status.in_(ACTIVE_STATUSES),
                Broadcast.starts_at < now,
            )
            .order_by(Broadcast.starts_at)
        )
    )
    aired = missed = 0
    events: list[AsRunEvent] = []
    missed_month, short_month, silent_month = (
        months_ago(this_month, n) for n in (MISSED_BACK, SHORT_BACK, SILENT_BACK)
    )
    for b in past:
        month = int(b.local_month[5:])
        played_ms: int | None
        players: list[Device]
        if b.village_id is None:
            # The CCHC column: most months within 10–15 min, one missed, one short; the
            # station PC and every cluster play it, but for one cluster in one month.
            # The master played to its end (the one the column's rundown makes, when known).
            played_ms = {missed_month: None, short_month: 8 * 60_000 + 20_000}.get(
                b.local_month, master_ms or 11 * 60_000 + (month * 37_000) % 180_000
            )
            cut = silent if b.local_month == silent_month else None
            players = [online, *(d for v, d in clusters.items() if v != cut)]
        else:
            played_ms, players = 5 * 60_000, [clusters[b.village_id]]
        players = [d for d in players if d.last_seen_at and b.starts_at < d.last_seen_at]
        if played_ms is None or not players:
            b.status = BroadcastStatus.missed.value
            missed += 1
            continue
        b.status = BroadcastStatus.aired.value
        aired += 1
        events += [
            AsRunEvent(
                event_id=f"demo-{b.id}-{device.id}",
                device_id=device.id,
                broadcast_id=b.id,
                sha256=sha,
                started_at=b.starts_at,
                ended_at=b.starts_at + timedelta(milliseconds=played_ms),
                status="played",
                received_at=b.starts_at + timedelta(milliseconds=played_ms, seconds=40),
            )
            for device in players
        ]
    session.add_all(events)
    for device in (online, *clusters.values()):
        device.last_played_at = max(
            (e.ended_at for e in events if e.device_id == device.id), default=None
        )
    session.flush()
    created.append(f"as-run history: {aired} broadcasts aired, {missed} missed")
    # What the scheduler's own jobs would have found: the missed column and the village
    # slots nobody reported, as one group per month (app.schedule.warnings).
    missed_by_month: dict[str, list[Broadcast]] = {}
    for b in past:
        if b.status == BroadcastStatus.missed.value:
            missed_by_month.setdefault(b.local_month, []).append(b)
    names = {v.id: v.name for v in villages}
    notes = []
    for month_key, found in sorted(missed_by_month.items()):
        notes.append(
            schedule_warnings.sync_group(
                session,
                kind="missed",
                station_id=station_id,
                month=month_key,
                items=[
                    schedule_warnings.broadcast_item(
                        broadcast_id=b.id,
                        starts_at=b.starts_at,
                        village_id=b.village_id,
                        village=names.get(b.village_id) if b.village_id else None,
                    )
                    for b in found
                ],
            )
        )
    created.append(f"{len(notes)} scheduler warnings")
    return created
