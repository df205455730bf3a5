"""Natural-language understanding for callers: spoken-form parsers, the labelled set, its eval.

`dialog.understanding` is the public face; the modules here hold the pieces it is made of.
"""
