"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect

import app.models  # noqa: F401
from alembic import command
from app import migrations
from app.db import Base, make_engine
from app.migrations import alembic_config


def test_models_and_migrations_do_not_differ(engine: Engine) -> None:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "include_object": _ours})
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == [], f"models differ from migrations; add an Alembic revision: {diff}"


def _ours(obj, name, type_, reflected, compare_to):  # type: ignore[no-untyped-def]
    return not (type_ == "table" and name in {"apscheduler_jobs", "alembic_version"})


def test_database_is_at_the_single_head(engine: Engine) -> None:
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert len(heads) == 1, f"migrations have several heads: {heads}"
    with engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_heads() == tuple(heads)


def test_once_a_month_rule_is_a_unique_index_in_the_database(engine: Engine) -> None:
    indexes = {ix["name"]: ix for ix in inspect(engine).get_indexes("broadcasts")}
    assert indexes["uq_broadcasts_period"]["unique"]


def _counts(url: str) -> dict[str, int]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            tables = ("stations", "programmes", "villages", "broadcasts", "rundown_items")
            return {
                t: conn.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar_one() for t in tables
            }
    finally:
        engine.dispose()


def test_upgrading_and_downgrading_keeps_every_row(scratch_url: str) -> None:
    # 0004 rebuilds the broadcasts' foreign keys (on SQLite by copying tables). The data
    # a station already has must come through both ways: no cascading delete, nothing lost.
    migrations.upgrade(scratch_url, "0003")
    engine = make_engine(scratch_url)
    with engine.begin() as conn:
        run = conn.exec_driver_sql
        now = "2024-01-01 00:00:00+00:00"
        run(
            "INSERT INTO stations (id, name, timezone, created_at) "
            f"VALUES (1, 'Xuân Phúc', 'Asia/Ho_Chi_Minh', '{now}')"
        )
        for pid, code, scope in ((1, "cchc", "station"), (2, "village-weekly", "village")):
            run(
                "INSERT INTO programmes (id, station_id, code, name, scope, cadence, "
                f"min_duration_ms, max_duration_ms, created_at) VALUES ({pid}, 1, '{code}', "
                f"'Chuyên mục', '{scope}', '{{}}', 600000, 900000, '{now}')"
            )
        run(
            "INSERT INTO villages (id, station_id, name, created_at) "
            f"VALUES (1, 1, 'Thôn 1', '{now}')"
        )
        run(
            "INSERT INTO segments (id, station_id, programme_id, title, topic, status, priority, "
            f"version, created_at, updated_at) VALUES (1, 1, 1, 'Cải cách', 'cchc', 'draft', "
            f"'normal', 1, '{now}', '{now}')"
        )
        for bid, pid, vid, key in ((1, 1, "NULL", "2024-03"), (2, 2, "1", "v1:2024-03-17T18:00")):
            run(
                "INSERT INTO broadcasts (id, station_id, programme_id, village_id, starts_at, "
                "period_key, local_month, status, priority, created_at, updated_at, version) "
                f"VALUES ({bid}, 1, {pid}, {vid}, '{now}', '{key}', '2024-03', 'planned', "
                f"'normal', '{now}', '{now}', 1)"
            )
        run(
            "INSERT INTO rundown_items (id, broadcast_id, position, segment_id) VALUES (1, 1, 0, 1)"
        )
    engine.dispose()
    before = _counts(scratch_url)
    assert before == {
        "stations": 1,
        "programmes": 2,
        "villages": 1,
        "broadcasts": 2,
        "rundown_items": 1,
    }
    migrations.upgrade(scratch_url)
    assert _counts(scratch_url) == before
    # Stations and broadcasts from before networks existed are fm: today's behaviour.
    engine = make_engine(scratch_url)
    with engine.connect() as conn:
        run = conn.exec_driver_sql
        assert [tuple(r) for r in run("SELECT station_id, network FROM station_networks")] == [
            (1, "fm")
        ]
        assert str(run("SELECT effective_from FROM station_networks").scalar_one()).startswith(
            "0001-01-01"
        )
        assert {r[0] for r in run("SELECT network FROM broadcasts")} == {"fm"}
    engine.dispose()
    command.downgrade(migrations.alembic_config(scratch_url), "0003")
    assert _counts(scratch_url) == before
    migrations.upgrade(scratch_url)
    assert _counts(scratch_url) == before


def test_broadcasts_the_plan_made_before_0008_get_their_plan_key(scratch_url: str) -> None:
    # Made by the plan (no broadcast.create in the audit log) and never changed since: the
    # plan may re-plan it. Changed since (version 2): kept as it is. Made by hand, or
    # cancelled: no plan key.
    migrations.upgrade(scratch_url, "0004")
    engine = make_engine(scratch_url)
    now = "2024-01-01 00:00:00+00:00"
    with engine.begin() as conn:
        run = conn.exec_driver_sql
        run(
            "INSERT INTO stations (id, name, timezone, created_at) "
            f"VALUES (1, 'Xuân Phúc', 'Asia/Ho_Chi_Minh', '{now}')"
        )
        run(
            "INSERT INTO programmes (id, station_id, code, name, scope, cadence, "
            "min_duration_ms, max_duration_ms, created_at) VALUES (1, 1, 'cchc', 'CCHC', "
            f"'station', '{{}}', 600000, 900000, '{now}')"
        )
        rows = ((1, "2024-01", "planned", 1), (2, "2024-02", "planned", 2))
        rows += ((3, "2024-03", "planned", 1), (4, "2024-04", "cancelled", 2))
        for bid, key, status, version in rows:
            run(
                "INSERT INTO broadcasts (id, station_id, programme_id, starts_at, period_key, "
                "local_month, status, priority, created_at, updated_at, version) VALUES "
                f"({bid}, 1, 1, '{now}', '{key}', '{key}', '{status}', 'normal', '{now}', "
                f"'{now}', {version})"
            )
        run(
            "INSERT INTO audit_events (actor, action, entity, entity_id, created_at) "
            f"VALUES ('vanphong', 'broadcast.create', 'broadcast', 3, '{now}')"
        )
    migrations.upgrade(scratch_url)
    with engine.connect() as conn:
        got = conn.exec_driver_sql(
            "SELECT id, plan_key, plan_version FROM broadcasts ORDER BY id"
        ).all()
    engine.dispose()
    assert [tuple(r) for r in got] == [
        (1, "2024-01", 1),
        (2, "2024-02", None),
        (3, None, None),
        (4, None, None),
    ]
