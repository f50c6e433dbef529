"""Quorum (RFC 0008 §3-§4): ``rules`` (votequorum's verdict as a pure function) and ``primary``
(the group layer's tracker: verdicts in the stream, and the primary-component hold)."""
