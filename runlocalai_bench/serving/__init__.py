"""Rerankers behind an HTTP server, as local users run them: the server process on 127.0.0.1 (:mod:`.process`),
the client that sends one query with its candidates per request and maps the scores back by index
(:mod:`.client`), and the load generator that sends many at once (:mod:`.load`). Which servers exist and how
they are started is the served backend's business (``rerankers/served.py`` and its backends)."""
