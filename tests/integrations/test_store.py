"""The call store keeps the call record and the decisions, the same on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.exc import IntegrityError

from integrations.outbox import OutboxHelpdesk, OutboxItem, OutboxMessenger
from integrations.store import CallEvents, Store, make_engine, migrated_metadata

MARIA = "+14155550101"


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    store = Store(make_engine(db_url))
    store.migrate()
    yield store
    store.engine.dispose()


def _sms(key: str, to: str = MARIA) -> OutboxItem:
    return OutboxItem("sms", key, {"to": to, "body": "Your parcel is on its way"}, order_ref="1001")


def test_a_call_is_recorded_with_its_turns_and_events(store: Store):
    store.upsert_call("CA1", from_number=MARIA, to_number="+18005550100", direction="inbound")
    store.upsert_call("CA1", status="in-progress")
    store.add_turn("CA1", 0, "agent", "Hi Maria, this is Northwind Goods.", source="tts")
    store.add_turn("CA1", 1, "caller", "where is my order", source="audio", confidence=0.93)
    store.update_turn("CA1", 0, interrupted=1, start_ms=0, end_ms=2310)
    store.add_event("CA1", "intent", None, {"name": "order_status"}, 2500)
    store.add_event("CA1", "order.looked_up", "1001", {"found": True, "via": "caller_id"}, 2600)

    call = store.call("CA1")

    assert call is not None
    assert (call["from_number"], call["status"]) == (MARIA, "in-progress")
    assert [(t["role"], t["text"]) for t in call["turns"]] == [
        ("agent", "Hi Maria, this is Northwind Goods."),
        ("caller", "where is my order"),
    ]
    assert call["turns"][0]["interrupted"] == 1 and call["turns"][0]["end_ms"] == 2310
    assert [(e["type"], e["order_ref"]) for e in call["events"]] == [
        ("intent", None),
        ("order.looked_up", "1001"),
    ]
    assert call["events"][1]["data"] == {"found": True, "via": "caller_id"}
    assert store.call("CA-unknown") is None


def test_twilio_status_callbacks_move_the_call_on(store: Store):
    store.upsert_call("CA2", from_number=MARIA)
    store.record_status("CA2", "ringing", {"CallStatus": "ringing"})
    store.record_status("CA2", "completed", {"CallStatus": "completed", "CallDuration": "42"})

    call = store.call("CA2")
    assert (call["status"], call["duration_s"]) == ("completed", 42)
    assert [u["status"] for u in store.status_updates("CA2")] == ["ringing", "completed"]


def test_a_decision_and_its_side_effect_are_stored_together(store: Store):
    store.upsert_call("CA3", from_number=MARIA)

    decision = store.record_decision(
        "CA3", "sms.sent", "1001", {"to": MARIA}, [_sms("sms:CA3:tracking:1001")]
    )

    call = store.call("CA3")
    (event,) = call["events"]
    (row,) = call["outbox"]
    assert event["id"] == decision.event_id and event["type"] == "sms.sent"
    assert event["data"]["outbox"] == [f"outbox:{row['id']}"]
    assert (row["kind"], row["status"], row["attempts"]) == ("sms", "pending", 0)
    assert row["payload"]["to"] == MARIA and row["order_ref"] == "1001"
    assert [r["id"] for r in store.outbox_items("pending")] == [row["id"]]


def test_the_same_decision_twice_queues_one_side_effect_and_one_event(store: Store):
    store.upsert_call("CA4", from_number=MARIA)
    first = store.record_decision("CA4", "sms.sent", "1001", {}, [_sms("sms:CA4:1001")])
    again = store.record_decision("CA4", "sms.sent", "1001", {}, [_sms("sms:CA4:1001")])

    assert again.event_id is None
    assert again.entries[0].id == first.entries[0].id
    assert len(store.outbox_items()) == 1
    assert [e["type"] for e in store.call("CA4")["events"]] == ["sms.sent"]


async def test_a_decision_made_twice_in_a_call_is_on_its_record_once(store: Store):
    """What the call keeps for its summary and ticket (`recorded`) matches the store: one
    event for a decision the dialog repeated (a retry, a caller asking again)."""
    store.upsert_call("CA6", from_number=MARIA)
    events = CallEvents(store, "CA6", lambda: 10)
    for _ in range(2):
        await events.decide("sms.sent", [_sms("sms:CA6:1001")], order="1001", to=MARIA)

    assert [e["type"] for e in events.recorded] == ["sms.sent"]
    assert [e["type"] for e in store.call("CA6")["events"]] == ["sms.sent"]


def test_a_reseeded_demo_shop_forgets_the_decisions_about_the_old_one(store: Store):
    store.upsert_call("CA7", from_number=MARIA)
    store.record_decision("CA7", "sms.sent", "1001", {}, [_sms("sms:CA7:1001")])
    store.forget_decisions()

    assert store.outbox_items() == []
    again = store.record_decision("CA7", "sms.sent", "1001", {}, [_sms("sms:CA7:1001")])
    assert again.event_id is not None  # a decision of its own, not the old shop's


def test_a_decision_that_cannot_be_recorded_queues_nothing(store: Store):
    # No such call: the event's foreign key fails, and the outbox row goes with it.
    with pytest.raises(IntegrityError):
        store.record_decision("CA-none", "sms.sent", "1001", {}, [_sms("sms:CA-none:1001")])
    assert store.outbox_items() == []


async def test_the_dialogs_own_record_of_a_queued_text_is_one_event(store: Store):
    store.upsert_call("CA5", from_number=MARIA)
    events = CallEvents(store, "CA5", lambda: 1234)
    messenger = OutboxMessenger(events)

    message_id = await messenger.send_sms(MARIA, "tracking: …", idempotency_key="CA5:tracking:1001")
    # What dialog.Agent does once send_sms has returned.
    await events.record("sms.sent", order="1001", to=MARIA, message_id=message_id)

    (event,) = store.call("CA5")["events"]
    assert (event["type"], event["order_ref"], event["at_ms"]) == ("sms.sent", "1001", 1234)
    assert event["data"]["message_id"] == message_id == event["data"]["outbox"][0]
    assert [e["type"] for e in events.recorded] == ["sms.sent"]
    assert events.recorded[0]["order"] == "1001"


@pytest.mark.parametrize("url", ["postgres://shop@db.example/calls", "postgresql://shop@db/c"])
def test_a_plain_postgresql_url_is_driven_by_psycopg_3(url: str):
    assert make_engine(url).url.drivername == "postgresql+psycopg"


async def test_the_dialogs_own_record_of_a_queued_ticket_is_one_event(store: Store):
    store.upsert_call("CA7", from_number=MARIA)
    events = CallEvents(store, "CA7", lambda: 99)

    ticket = await OutboxHelpdesk(events).create_ticket(
        "Call CA7: lost parcel",
        "No scan for 9 days",
        requester_phone=MARIA,
        requester_email=None,
        tags=["phone"],
        priority="high",
        idempotency_key="CA7:ticket:lost",
    )
    await events.record("ticket.created", ticket_id=ticket.id, reason="lost")

    (event,) = store.call("CA7")["events"]
    assert event["type"] == "ticket.created"
    assert event["data"]["ticket_id"] == event["data"]["reference"] == ticket.id
    assert event["data"]["reason"] == "lost"


# --- migrations -------------------------------------------------------------------------------


def _schema_drift(engine: sa.Engine) -> list:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(context, list(migrated_metadata))


def _version(engine: sa.Engine) -> str:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()


def test_migrations_build_the_schema_the_code_declares_and_rerun_harmlessly(db_url: str):
    engine = make_engine(db_url)
    store = Store(engine)

    store.migrate()
    store.upsert_call("CA6", from_number=MARIA)
    store.migrate()  # every start-up runs it again

    assert _schema_drift(engine) == []
    assert _version(engine) == "0006_photos"
    assert store.call("CA6")["from_number"] == MARIA
    engine.dispose()


def test_a_database_from_before_migrations_is_adopted_with_its_calls(db_url: str):
    engine = make_engine(db_url)
    # What the first version's create_all made: the call tables, no outbox, no version table.
    from integrations.schema import metadata

    metadata.create_all(engine)
    Store(engine).upsert_call("CA-old", from_number=MARIA)

    Store(engine).migrate()

    assert _schema_drift(engine) == []
    assert Store(engine).call("CA-old")["from_number"] == MARIA
    assert Store(engine).outbox_items() == []
    engine.dispose()


def test_instances_starting_together_migrate_once_without_error(db_url: str):
    engines = [make_engine(db_url) for _ in range(4)]
    barrier = threading.Barrier(len(engines))
    errors: list[Exception] = []

    def start(engine: sa.Engine) -> None:
        barrier.wait()
        try:
            Store(engine).migrate()
        except Exception as error:
            errors.append(error)

    threads = [threading.Thread(target=start, args=(e,)) for e in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert _version(engines[0]) == "0006_photos"
    for engine in engines:
        engine.dispose()


def test_servers_starting_together_create_every_table_without_error(db_url: str):
    """What CI once saw on PostgreSQL: two servers starting on one new database, one creating
    the messaging tables outside the migration's lock while the other did too."""
    from tests.fakes import FakeSynthesizer, FakeTranscriber
    from voice.server import Engines, create_app
    from voice.settings import Settings

    servers = 4
    barrier = threading.Barrier(servers)
    errors: list[Exception] = []
    apps: list = []

    def start() -> None:
        barrier.wait()
        try:
            settings = Settings(database_url=db_url)
            apps.append(create_app(settings, Engines(FakeTranscriber(), FakeSynthesizer())))
        except Exception as error:
            errors.append(error)

    threads = [threading.Thread(target=start) for _ in range(servers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    assert len(apps) == servers
    engine = apps[0].state.runtime.engine
    tables = set(sa.inspect(engine).get_table_names())
    assert {"text_messages", "text_conversations", "text_opt_outs"} <= tables
    for app in apps:
        app.state.runtime.engine.dispose()


def test_the_server_creates_no_table_outside_the_migration_lock(tmp_path):
    """Start-up creates every table in `Store.migrate` (one instance at a time); what runs
    after it, as each route is installed, finds them there and creates none."""
    from tests.fakes import FakeSynthesizer, FakeTranscriber
    from voice import services
    from voice.server import Engines, create_app
    from voice.settings import Settings

    created: list[str] = []
    migrating = threading.local()
    migrate = Store.migrate

    def locked_migrate(self, *args, **kwargs):
        migrating.on = True
        try:
            return migrate(self, *args, **kwargs)
        finally:
            migrating.on = False

    def record(conn, cursor, statement, *_args) -> None:
        if statement.lstrip().upper().startswith("CREATE TABLE") and not getattr(
            migrating, "on", False
        ):
            created.append(statement.split("(")[0].strip())

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", record)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(services.Store, "migrate", locked_migrate)
            app = create_app(
                Settings(database_url=f"sqlite:///{tmp_path}/new.db"),
                Engines(FakeTranscriber(), FakeSynthesizer()),
            )
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", record)
    app.state.runtime.engine.dispose()
    assert created == []
