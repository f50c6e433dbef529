"""Tests of the protocol core against RFC 0003 and RFC 0004."""
