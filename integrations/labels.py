"""Return shipping labels: a printable 4x6 in PDF and a signed, expiring link to it.

`EmbeddedLabels` is the default `LabelMaker`: it makes no carrier call. It gives each return a
deterministic USPS-style tracking number and a link `{public_url}/labels/{rma}.pdf?expires=…&sig=…`
whose HMAC only this server can produce; the PDF itself is drawn on request by
`render_label_pdf`, so nothing is stored and nothing secret is ever printed.

Serving the link (the route `GET /labels/{rma}.pdf`): check `labels.verify(rma, expires, sig)`
(or `verify_label_url`), then ask the returns store for the document
(`DemoReturns.label_pdf(rma)`), which draws it with `EmbeddedLabels.pdf`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Protocol, runtime_checkable
from urllib.parse import quote

from integrations.clock import Clock, utc_now
from integrations.models import Address, Customer, Label, Order, ReturnAuthorization

if TYPE_CHECKING:
    from reportlab.pdfgen.canvas import Canvas

__all__ = [
    "DEFAULT_WAREHOUSE",
    "DEV_LABEL_SECRET",
    "RETURN_CARRIER",
    "EmbeddedLabels",
    "LabelMaker",
    "LabelPrinter",
    "label_signature",
    "render_label_pdf",
    "return_tracking_number",
    "verify_label_url",
]

RETURN_CARRIER = "USPS"
"""The carrier every embedded return label is for."""

DEFAULT_WAREHOUSE = Address(
    line1="1200 Commerce Way",
    line2="Dock 4",
    city="Reno",
    region="NV",
    postal_code="89502",
)
"""Where returns go unless the shop says otherwise (the demo shop ships from Reno, NV)."""

DEV_LABEL_SECRET = b"postvoice-dev-label-secret"
"""A public, well-known secret for development only: links signed with it prove nothing."""


@runtime_checkable
class LabelMaker(Protocol):
    """Makes the return shipping label of an RMA: a carrier, a tracking number and a link."""

    async def make(
        self, rma: ReturnAuthorization, order: Order, customer: Customer | None
    ) -> Label: ...


@runtime_checkable
class LabelPrinter(Protocol):
    """Draws the label document itself, for makers whose labels this server serves."""

    def pdf(self, rma: ReturnAuthorization, order: Order, customer: Customer | None) -> bytes: ...


def return_tracking_number(rma: str) -> str:
    """The 22-digit USPS-style tracking number of a return: the same RMA always gets the same.

    "9202" (a returns service prefix), 17 digits from a hash of the RMA, and the mod-10 check
    digit USPS uses, so the number passes the check a scanner or a tracking form applies.
    """
    digest = int.from_bytes(hashlib.sha256(f"return-label:{rma}".encode()).digest(), "big")
    body = "9202" + f"{digest % 10**17:017d}"
    return body + _mod10_check_digit(body)


def _mod10_check_digit(body: str) -> str:
    # Weights alternate 3, 1, 3, … from the rightmost digit of the body.
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return str((10 - total % 10) % 10)


def label_signature(secret: bytes, rma: str, expires: int) -> str:
    """The URL-safe HMAC-SHA256 of a label link: binds the RMA to its expiry time."""
    mac = hmac.new(secret, f"{rma}\n{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


def verify_label_url(secret: bytes, rma: str, expires: int | str, sig: str, now: datetime) -> bool:
    """Whether a label link's `expires` and `sig` were issued for `rma` and have not expired.

    Anything malformed is simply not valid; the signature is compared in constant time.
    """
    try:
        expiry = int(expires)
    except (TypeError, ValueError):
        return False
    if now.timestamp() > expiry:
        return False
    expected = label_signature(secret, rma, expiry).encode("ascii")
    return hmac.compare_digest(expected, sig.encode("utf-8", errors="replace"))


class EmbeddedLabels:
    """`LabelMaker` and `LabelPrinter` with no carrier account: signed links to PDFs drawn here.

    `secret` signs the links (share it across instances; rotate it to revoke every link),
    `public_url` is where this server is reached, and links stop working after `ttl`.
    """

    def __init__(
        self,
        secret: bytes,
        public_url: str,
        ttl: timedelta = timedelta(days=30),
        clock: Clock = utc_now,
        *,
        shop_name: str = "Northwind Goods",
        warehouse: Address = DEFAULT_WAREHOUSE,
    ) -> None:
        if not secret:
            raise ValueError("label links need a non-empty secret")
        self._secret = secret
        self._public_url = public_url.rstrip("/")
        self._ttl = ttl
        self._clock = clock
        self.shop_name = shop_name
        self.warehouse = warehouse

    async def make(
        self, rma: ReturnAuthorization, order: Order, customer: Customer | None
    ) -> Label:
        """The label of `rma`: USPS, its deterministic tracking number, and a fresh signed link."""
        expires_at = (self._clock() + self._ttl).astimezone(UTC).replace(microsecond=0)
        return Label(
            url=self.url(rma.rma, expires_at),
            carrier=RETURN_CARRIER,
            tracking_number=return_tracking_number(rma.rma),
            expires_at=expires_at,
        )

    def url(self, rma: str, expires_at: datetime) -> str:
        """The signed link to `rma`'s label, valid until `expires_at`."""
        expires = int(expires_at.timestamp())
        sig = label_signature(self._secret, rma, expires)
        return f"{self._public_url}/labels/{quote(rma, safe='')}.pdf?expires={expires}&sig={sig}"

    def verify(self, rma: str, expires: int | str, sig: str) -> bool:
        """Whether a link's query was signed by this maker for `rma` and is still valid now."""
        return verify_label_url(self._secret, rma, expires, sig, self._clock())

    def pdf(
        self,
        rma: ReturnAuthorization,
        order: Order,
        customer: Customer | None,
        *,
        compress: bool = True,
    ) -> bytes:
        """The printable label of `rma`, shipping from the order's address to the warehouse."""
        label = rma.label
        return render_label_pdf(
            rma=rma.rma,
            order_number=order.number,
            tracking_number=label.tracking_number if label else return_tracking_number(rma.rma),
            carrier=label.carrier if label and label.carrier else RETURN_CARRIER,
            from_name=customer.name if customer else "",
            ship_from=order.shipping_address,
            to_name=f"{self.shop_name} Returns",
            ship_to=self.warehouse,
            compress=compress,
        )


# --------------------------------------------------------------------------------------------
# Drawing
# --------------------------------------------------------------------------------------------

_INCH = 72.0  # PDF points
_WIDTH, _HEIGHT = 4 * _INCH, 6 * _INCH
_MARGIN = 14.0
_INNER = _WIDTH - 2 * _MARGIN
_REGULAR, _BOLD = "Helvetica", "Helvetica-Bold"


def render_label_pdf(
    *,
    rma: str,
    order_number: str,
    tracking_number: str,
    from_name: str,
    ship_from: Address | None,
    to_name: str,
    ship_to: Address,
    carrier: str = RETURN_CARRIER,
    compress: bool = True,
) -> bytes:
    """A 4x6 in return label: sender, recipient, carrier, tracking and RMA barcodes (Code 128).

    The output is byte-for-byte the same for the same input (no creation date, no random ids);
    `compress=False` leaves the page text readable in the file, which tests rely on.
    """
    # reportlab is imported on the first label drawn, not when the server starts.
    from reportlab.pdfgen.canvas import Canvas

    buffer = io.BytesIO()
    pdf = Canvas(
        buffer,
        pagesize=(_WIDTH, _HEIGHT),
        invariant=1,
        pageCompression=1 if compress else 0,
    )
    pdf.setTitle(f"Return label {rma}")
    pdf.setSubject(f"Return of order {order_number}")
    y = _HEIGHT - _MARGIN

    # Carrier band.
    pdf.setFont(_BOLD, 30)
    pdf.drawString(_MARGIN, y - 28, carrier)
    pdf.setFont(_BOLD, 11)
    pdf.drawRightString(_WIDTH - _MARGIN, y - 14, "PREPAID RETURN")
    pdf.setFont(_REGULAR, 8)
    pdf.drawRightString(_WIDTH - _MARGIN, y - 26, "No postage necessary")
    y -= 38
    _rule(pdf, y, 2)

    # Sender: the customer, small, as on any label.
    y -= 12
    y = _address_block(pdf, "FROM:", from_name, ship_from, y, size=8)

    # Recipient: the warehouse, large enough to read across a sorting belt.
    y -= 18
    y = _address_block(pdf, "SHIP TO:", to_name, ship_to, y, size=12, bold_name=True)
    y -= 6
    _rule(pdf, y, 2)

    # Tracking barcode with the number beneath, grouped by four as carriers print it.
    y -= 14
    pdf.setFont(_BOLD, 8)
    pdf.drawCentredString(_WIDTH / 2, y, f"{carrier} TRACKING #")
    y = _barcode(pdf, tracking_number, y - 5, height=64)
    pdf.setFont(_BOLD, 10)
    grouped = " ".join(tracking_number[i : i + 4] for i in range(0, len(tracking_number), 4))
    pdf.drawCentredString(_WIDTH / 2, y - 12, grouped)
    y -= 20
    _rule(pdf, y, 2)

    # The RMA, for the warehouse to match the parcel to its return.
    y -= 36
    _fit_string(pdf, rma, _BOLD, 30, _WIDTH / 2, y, centred=True)
    pdf.setFont(_REGULAR, 9)
    pdf.drawCentredString(_WIDTH / 2, y - 14, f"Order #{order_number}")
    _barcode(pdf, rma, y - 22, height=40)

    pdf.setFont(_REGULAR, 6.5)
    pdf.drawCentredString(
        _WIDTH / 2, _MARGIN, "Tape this label to the outside of the parcel. Keep your receipt."
    )
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def _rule(pdf: Canvas, y: float, width: float) -> None:
    pdf.setLineWidth(width)
    pdf.line(_MARGIN, y, _WIDTH - _MARGIN, y)


def _address_block(
    pdf: Canvas,
    title: str,
    name: str,
    address: Address | None,
    top: float,
    *,
    size: float,
    bold_name: bool = False,
) -> float:
    """Draws a titled address from `top` down; returns the y below it."""
    pdf.setFont(_BOLD, 7)
    pdf.drawString(_MARGIN, top, title)
    lines = [name] if name else []
    if address is not None:
        lines += [address.line1, address.line2]
        lines.append(f"{address.city}, {address.region} {address.postal_code}")
        if address.country != "US":
            lines.append(address.country)
    y = top
    indent = _MARGIN + 42
    for i, text in enumerate(line for line in lines if line):
        y -= size + 3
        font = _BOLD if bold_name and i == 0 else _REGULAR
        _fit_string(pdf, text.upper(), font, size, indent, y, max_width=_WIDTH - _MARGIN - indent)
    return y


def _fit_string(
    pdf: Canvas,
    text: str,
    font: str,
    size: float,
    x: float,
    y: float,
    *,
    max_width: float = _INNER,
    centred: bool = False,
) -> None:
    """Draws `text`, smaller when it is too wide, cut short only when even that fails."""
    from reportlab.pdfbase.pdfmetrics import stringWidth

    while size > 6 and stringWidth(text, font, size) > max_width:
        size -= 0.5
    while len(text) > 1 and stringWidth(text, font, size) > max_width:
        text = text[:-2] + "…"
    pdf.setFont(font, size)
    if centred:
        pdf.drawCentredString(x, y, text)
    else:
        pdf.drawString(x, y, text)


def _barcode(pdf: Canvas, value: str, top: float, *, height: float) -> float:
    """A centred Code 128 barcode hanging from `top`, as wide as fits; returns its bottom."""
    from reportlab.graphics.barcode.code128 import Code128

    bar_width = 1.4
    code = Code128(value, barWidth=bar_width, barHeight=height, humanReadable=False)
    if code.width > _INNER:
        bar_width *= _INNER / code.width
        code = Code128(value, barWidth=bar_width, barHeight=height, humanReadable=False)
    bottom = top - height
    code.drawOn(pdf, (_WIDTH - code.width) / 2, bottom)
    return bottom
