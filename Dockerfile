FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DATABASE_URL=sqlite:////data/db.sqlite3 \
    AUTOPACK_NOTES_FILE=/data/human_notes.md

WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
# collectstatic needs no database and no secret: the build runs with the local settings (no
# AUTOPACK_ENV, no .env, which .dockerignore keeps out); production's are given when the container runs.
RUN python manage.py collectstatic --no-input --verbosity 0 \
    && useradd --create-home --uid 1000 autopack \
    && mkdir -p /data && chown autopack /data

# The code and the collected static files stay root's: the server can read them, not change them.
USER autopack
VOLUME ["/data"]
EXPOSE 8000
# Inside a container no client is on loopback: set AUTOPACK_API_KEY so executors can write.
# start.sh waits for the database, migrates, then runs gunicorn (HOST, PORT, WORKERS) and a task worker
# (alerts' webhook and sweep); AUTOPACK_TASK_WORKER=0 runs gunicorn alone.
CMD ["sh", "start.sh"]
