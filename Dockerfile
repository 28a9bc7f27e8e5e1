FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DATABASE_URL=sqlite:////data/db.sqlite3 \
    AUTOPACK_NOTES_FILE=/data/human_notes.md

WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

COPY . .
RUN python manage.py collectstatic --no-input --verbosity 0 \
    && useradd --create-home --uid 1000 autopack \
    && mkdir -p /data && chown autopack /data

USER autopack
VOLUME ["/data"]
EXPOSE 8000
# Inside a container no client is on loopback: set AUTOPACK_API_KEY so executors can write.
# start.sh runs gunicorn and a task worker (alerts' webhook and sweep); AUTOPACK_TASK_WORKER=0 runs gunicorn alone.
CMD ["sh", "start.sh"]
