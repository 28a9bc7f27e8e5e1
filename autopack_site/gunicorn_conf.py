"""How the dashboard is served, by `make run` and the Docker image alike: threaded workers.

Sync workers give each connection a whole worker until it closes, so two idle or slow clients (an
open keep-alive, a slow upload, a streamed answer) stall a two-worker server and every poll with it.
gthread workers hand a waiting connection to the event loop and serve requests on a pool of threads:
polls keep answering while some requests wait. `--workers` and `--bind` come from the command line.

No access log: Django logs each request itself (autopack_site.middleware.RequestLogMiddleware), with
the API key or user that made it, which gunicorn cannot know.
"""

worker_class = "gthread"
threads = 16
# Idle keep-alive connections are parked, not given a thread; they are closed after this many seconds.
keepalive = 5
timeout = 30
