# gunicorn settings for liftlab's web app (the admin and the REST API).
#   gunicorn -c platform/gunicorn.conf.py "web:create_app()"
# Every value can be overridden with the matching GUNICORN_* environment variable.
import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() * 2 + 1))
threads = int(os.environ.get("GUNICORN_THREADS", "2"))
worker_class = "gthread"
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = 30
keepalive = 5
max_requests = 10_000  # recycle workers now and then: bounded memory growth
max_requests_jitter = 1_000
preload_app = False  # each worker opens its own database pool after the fork
accesslog = os.environ.get("GUNICORN_ACCESSLOG", "-")
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOGLEVEL", "info")
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1")
