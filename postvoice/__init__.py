"""The `postvoice` command: above every other package, it only parses options and hands over."""
