"""The demo shop's tables: SQLAlchemy Core on their own `metadata`, names prefixed `shop_`,
portable to SQLite and PostgreSQL.

The database, not only the code, refuses what no shop could do: a second return or a second
refund of one order line, a second claim of one kind for one parcel, two uses of a key.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Engine,
    ForeignKey,
    ForeignKeyConstraint,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    inspect,
    text,
)

metadata = MetaData()
"""The demo shop's tables, kept apart from the store's so each can be created on its own."""

_UtcDateTime = DateTime(timezone=True)
_KEY = String(200)  # idempotency keys

shop_customers = Table(
    "shop_customers",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("phone", String(16), nullable=False, unique=True),  # E.164
    Column("email", String(254), nullable=False, unique=True),  # stored lower-case
    Column("zip", String(10), nullable=False),
)

shop_orders = Table(
    "shop_orders",
    metadata,
    Column("number", String(32), primary_key=True),
    Column("customer_id", ForeignKey("shop_customers.id"), nullable=False, index=True),
    Column("placed_at", _UtcDateTime, nullable=False),
    Column("fulfillment", String(16), nullable=False),
    Column("note", Text, nullable=False, default=""),
    # The shipping address; all NULL when the order has none (a digital good).
    Column("ship_line1", String(200), nullable=True),
    Column("ship_line2", String(200), nullable=False, default=""),
    Column("ship_city", String(100), nullable=True),
    Column("ship_region", String(64), nullable=True),
    Column("ship_postal_code", String(16), nullable=True),
    Column("ship_country", String(2), nullable=True),
    Column("payment_method", String(100), nullable=False, default=""),  # as said to a caller
    Column("payment_ref", String(64), nullable=True),  # the payment provider's id
    CheckConstraint(
        "fulfillment IN ('unfulfilled', 'fulfilled', 'returned', 'refunded', 'cancelled')",
        name="ck_shop_orders_fulfillment",
    ),
)

shop_order_lines = Table(
    "shop_order_lines",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("order_number", ForeignKey("shop_orders.number"), nullable=False, index=True),
    Column("line_id", String(48), nullable=False),  # "1001-1": what returns and refunds name
    Column("position", Integer, nullable=False),
    Column("sku", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("category", String(32), nullable=False),
    Column("price_cents", Integer, nullable=False),
    Column("quantity", Integer, nullable=False, default=1),
    Column("final_sale", Boolean, nullable=False, default=False),
    Column("variant", String(64), nullable=True),
    CheckConstraint("price_cents >= 0 AND quantity > 0", name="ck_shop_order_lines_amounts"),
    UniqueConstraint("order_number", "line_id", name="uq_shop_order_lines_line_id"),
)

shop_shipments = Table(
    "shop_shipments",
    metadata,
    Column("tracking_number", String(40), primary_key=True),
    Column("carrier", String(16), nullable=False),
    Column("order_number", ForeignKey("shop_orders.number"), nullable=False, index=True),
    Column("direction", String(8), nullable=False),  # "outbound" to the customer, or "return"
    Column("shipped_at", _UtcDateTime, nullable=True),
    Column("delivered_at", _UtcDateTime, nullable=True),
    Column("eta", Date, nullable=True),
    CheckConstraint("direction IN ('outbound', 'return')", name="ck_shop_shipments_direction"),
)

shop_tracking_events = Table(
    "shop_tracking_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "tracking_number",
        ForeignKey("shop_shipments.tracking_number"),
        nullable=False,
        index=True,
    ),
    Column("at", _UtcDateTime, nullable=False),
    Column("status", String(24), nullable=False),  # a ShipmentStatus value
    Column("description", String(300), nullable=False),
    Column("location", String(120), nullable=False, default=""),
)

shop_coupons = Table(
    "shop_coupons",
    metadata,
    Column("code", String(32), primary_key=True),  # stored upper-case
    Column("kind", String(16), nullable=False),
    Column("value", Integer, nullable=False),  # percent for "percent", cents for "amount"
    Column("min_subtotal_cents", Integer, nullable=False, default=0),
    Column("first_order_only", Boolean, nullable=False, default=False),
    Column("single_use", Boolean, nullable=False, default=False),
    Column("expires_at", _UtcDateTime, nullable=True),
    Column("active", Boolean, nullable=False, default=True),
    CheckConstraint("kind IN ('percent', 'amount', 'free_shipping')", name="ck_shop_coupons_kind"),
)

shop_coupon_uses = Table(
    "shop_coupon_uses",
    metadata,
    Column("code", ForeignKey("shop_coupons.code"), nullable=False),
    Column("customer_id", ForeignKey("shop_customers.id"), nullable=False),
    Column("order_number", ForeignKey("shop_orders.number"), nullable=True),
    Column("used_at", _UtcDateTime, nullable=False),
    PrimaryKeyConstraint("code", "customer_id"),
)

_RETURN_STATUSES = (
    "authorized",
    "label_sent",
    "in_transit",
    "received",
    "refunded",
    "exchanged",
    "closed",
)
RESOLUTIONS = ("refund", "exchange", "store_credit")


def _in(column: str, values: Iterable[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


shop_returns = Table(
    "shop_returns",
    metadata,
    Column("rma", String(32), primary_key=True),
    Column("order_number", ForeignKey("shop_orders.number"), nullable=False, index=True),
    Column("reason_code", String(64), nullable=False),
    Column("resolution", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("exchange_variant", String(64), nullable=True),
    Column("idempotency_key", _KEY, nullable=True, unique=True),  # NULL for seeded returns
    Column("created_at", _UtcDateTime, nullable=False),
    Column("label_url", Text, nullable=True),
    Column("label_carrier", String(16), nullable=True),
    Column(
        "label_tracking_number",
        ForeignKey("shop_shipments.tracking_number"),
        nullable=True,
    ),
    Column("label_expires_at", _UtcDateTime, nullable=True),
    Column("label_idempotency_key", _KEY, nullable=True),
    Column("label_used_at", _UtcDateTime, nullable=True),
    Column("received_at", _UtcDateTime, nullable=True),
    CheckConstraint(_in("status", _RETURN_STATUSES), name="ck_shop_returns_status"),
    CheckConstraint(_in("resolution", RESOLUTIONS), name="ck_shop_returns_resolution"),
)

shop_return_lines = Table(
    "shop_return_lines",
    metadata,
    Column("rma", ForeignKey("shop_returns.rma"), nullable=False),
    Column("order_number", String(32), nullable=False),
    Column("line_id", String(48), nullable=False),
    PrimaryKeyConstraint("rma", "line_id"),
    ForeignKeyConstraint(
        ["order_number", "line_id"],
        ["shop_order_lines.order_number", "shop_order_lines.line_id"],
    ),
    # A line is returned at most once, whatever the code above it does.
    UniqueConstraint("order_number", "line_id", name="uq_shop_return_lines_once"),
)

shop_refunds = Table(
    "shop_refunds",
    metadata,
    Column("id", String(32), primary_key=True),  # "re_…", like a Stripe refund
    Column("order_number", String(32), nullable=False, index=True),
    Column("line_id", String(48), nullable=False),
    Column("amount_cents", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("method", String(32), nullable=False),
    Column("reason", String(200), nullable=False, default=""),
    Column("payment_ref", String(64), nullable=True),  # the charge it went back to
    Column("idempotency_key", _KEY, nullable=False, unique=True),
    Column("created_at", _UtcDateTime, nullable=False),
    Column("failure_reason", String(200), nullable=True),
    ForeignKeyConstraint(
        ["order_number", "line_id"],
        ["shop_order_lines.order_number", "shop_order_lines.line_id"],
    ),
    CheckConstraint("amount_cents > 0", name="ck_shop_refunds_amount"),
    CheckConstraint("method = 'original_payment'", name="ck_shop_refunds_method"),
    CheckConstraint(_in("status", ("succeeded", "pending", "failed")), name="ck_shop_refunds_st"),
    # Money goes back once per order line, ever: the database refuses a second refund.
    UniqueConstraint("order_number", "line_id", name="uq_shop_refunds_once_per_line"),
)

shop_stock = Table(
    "shop_stock",
    metadata,
    Column("sku", String(64), nullable=False),
    Column("variant", String(64), nullable=False),
    Column("on_hand", Integer, nullable=False),
    PrimaryKeyConstraint("sku", "variant"),
)

shop_address_changes = Table(
    "shop_address_changes",
    metadata,
    Column("idempotency_key", _KEY, primary_key=True),
    Column("order_number", ForeignKey("shop_orders.number"), nullable=False, index=True),
    Column("address", Text, nullable=False),  # JSON of the new Address
    Column("previous_address", Text, nullable=True),
    Column("applied_at", _UtcDateTime, nullable=False),
)

shop_delivery_requests = Table(
    "shop_delivery_requests",
    metadata,
    Column("id", String(32), primary_key=True),  # "RSC-…", "RDR-…", "CLM-…"
    Column("kind", String(16), nullable=False),
    Column("order_number", ForeignKey("shop_orders.number"), nullable=False, index=True),
    Column("idempotency_key", _KEY, nullable=False, unique=True),
    Column("day", Date, nullable=True),  # reschedule: the new delivery day
    Column("address", Text, nullable=True),  # redirect: JSON of the new Address
    Column("claim_kind", String(16), nullable=True),  # claim: "lost" | "damaged"
    Column("created_at", _UtcDateTime, nullable=False),
    CheckConstraint(_in("kind", ("reschedule", "redirect", "claim")), name="ck_shop_delivery_kind"),
    # One claim of each kind per parcel; other requests have no claim_kind, and NULLs never clash.
    UniqueConstraint("order_number", "kind", "claim_kind", name="uq_shop_delivery_one_claim"),
)

shop_sms = Table(
    "shop_sms",
    metadata,
    # Orders texts sent within one clock tick; `id` is what the rest of the world sees.
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("id", String(34), nullable=False, unique=True),  # "SM" + 32 hex, like a Twilio SID
    Column("to", String(16), nullable=False),
    Column("body", Text, nullable=False),
    Column("idempotency_key", _KEY, nullable=False, unique=True),
    Column("created_at", _UtcDateTime, nullable=False),
)

shop_tickets = Table(
    "shop_tickets",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("id", String(16), nullable=False, unique=True),  # "T-10001"
    Column("subject", String(300), nullable=False),
    Column("body", Text, nullable=False),
    Column("requester_phone", String(32), nullable=True),
    Column("requester_email", String(254), nullable=True),
    Column("tags", Text, nullable=False, default="[]"),  # JSON list
    Column("priority", String(8), nullable=False),
    Column("status", String(16), nullable=False, default="open"),
    Column("idempotency_key", _KEY, nullable=False, unique=True),
    Column("created_at", _UtcDateTime, nullable=False),
)

shop_ticket_attachments = Table(
    "shop_ticket_attachments",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("id", String(16), nullable=False, unique=True),  # "A-10001"
    Column("ticket_id", String(16), nullable=False, index=True),  # a shop_tickets.id
    Column("position", Integer, nullable=False),
    Column("filename", String(200), nullable=False),
    Column("content_type", String(64), nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("note", Text, nullable=False, default=""),
    Column("idempotency_key", _KEY, nullable=False),
    Column("created_at", _UtcDateTime, nullable=False),
    UniqueConstraint("idempotency_key", "position", name="uq_shop_ticket_attachments_key"),
)

# What was sent to a customer or handed to a person survives a reseed: a demo shop must never
# text twice, and a ticket someone may be working on must not vanish. These tables reference no
# demo row, so the rest can be dropped and rebuilt around them.
KEPT_TABLES = (shop_sms, shop_tickets, shop_ticket_attachments)
SEEDED_TABLES = tuple(t for t in metadata.sorted_tables if t not in KEPT_TABLES)


def drop_outdated_tables(engine: Engine) -> bool:
    """Drops the reseeded tables when any lacks a column (or has one too many) of today's schema.

    Their rows are about to be replaced anyway; the kept tables are never dropped.
    """
    existing = inspect(engine)
    present = set(existing.get_table_names())
    for table in SEEDED_TABLES:
        if table.name not in present:
            continue
        columns = {c["name"] for c in existing.get_columns(table.name)}
        if columns != {c.name for c in table.c}:
            # Old tables may carry foreign keys today's metadata no longer knows: children first.
            with engine.begin() as conn:
                for stale in reversed(SEEDED_TABLES):
                    if stale.name in present:
                        conn.execute(text(f'DROP TABLE "{stale.name}"'))
            return True
    return False
