"""The `hetang` command line: its parser, its commands and their console helpers."""
