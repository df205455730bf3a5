"""The brain: text in, text out (docs/DESIGN.md)."""
