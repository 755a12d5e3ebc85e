# The subscriber-profiles image: one install, every role chosen by the command
# (`profiles ingest-api`, `profiles projector`, `profiles query-api`, or `profiles serve`).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PROFILES_LOG_FORMAT=json

# Only what `pip install .` reads, so local state (.services/, .cache/, .venv/) never enters the image.
WORKDIR /src
COPY pyproject.toml README.md ./
COPY contracts ./contracts
COPY domain ./domain
COPY projections ./projections
COPY services ./services
RUN pip install . && rm -rf /src

# PostgreSQL (embedded default of `profiles serve`) refuses to run as root, and nothing here needs it.
RUN useradd --system --create-home --home-dir /home/profiles --uid 10001 profiles
USER profiles
WORKDIR /home/profiles

EXPOSE 8000 8080 8081
CMD ["profiles", "serve", "--host", "0.0.0.0", "--port", "8000"]
