"""Outbound HTTP: the one client every request to the outside world goes through.

``addresses`` decides which hosts may be reached (the SSRF policy), ``http``
sends a request under that policy and a total deadline, and ``pool`` keeps
keep-alive connections for the scan API. The importer, the scanners and the
alert channels all use it.
"""
