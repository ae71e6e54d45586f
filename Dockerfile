# The Hetang server image: migrations are applied at start, then the server runs.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY requirements.txt ./
# The locked, hashed dependencies first (a layer that changes only with the lock).
RUN pip install --no-cache-dir --require-hashes --no-deps -r requirements.txt
COPY pyproject.toml README.md alembic.ini ./
COPY server ./server
COPY venue_agent ./venue_agent
COPY passthrough ./passthrough
COPY migrations ./migrations
COPY web ./web
RUN pip install --no-cache-dir --no-deps --no-build-isolation -e . && useradd --system --home /data hetang \
    && mkdir -p /data && chown hetang /data
USER hetang
EXPOSE 8080
CMD ["sh", "-c", "hetang migrate && exec hetang serve"]
