"""The group layer: named process groups over the one ring (RFC 0006 §3).

``state`` (``GroupState``: group views as a pure function of the delivered stream), ``records``
(the layer's own record payloads), ``views`` (the values members receive) and ``driver`` (the
one driver of the layer, run by the embedded node, the daemon and the simulator alike). Nothing
is imported here: importing the layer's vocabulary must not pull in its machinery.
"""
