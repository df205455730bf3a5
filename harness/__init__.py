"""The testers' and measurers' tools: they drive the product from outside.

Replay, typed conversations, caller voices, bench and soak sit above `voice`, `dialog` and
`integrations` (they may import any of them; nothing imports them but the `postvoice` CLI).
"""
