"""Tests of the text language (tndiag.syntax)."""
