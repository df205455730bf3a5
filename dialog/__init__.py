"""The brain: text in, text out (DESIGN.md)."""
