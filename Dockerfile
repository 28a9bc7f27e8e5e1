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
CMD ["sh", "-c", "python manage.py migrate --no-input && exec gunicorn autopack_site.wsgi --config autopack_site/gunicorn_conf.py --bind 0.0.0.0:8000 --workers 2"]
