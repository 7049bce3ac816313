"""``GET /health`` (alive), ``GET /ready`` (model, Redis, Kafka) and ``GET /metrics``."""

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import generate_latest

from api.deps import State
from scoring.serving import version_number

router = APIRouter(tags=["health"])


@router.get("/health", summary="The process is alive")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/ready",
    summary="A model is loaded and Redis and Kafka answer",
    responses={503: {"description": "not ready: the body says what is missing"}},
)
async def ready(state: State) -> Response:
    served = state.parts.models.current()
    results = {name: await check() for name, check in state.parts.checks.items()}
    # the rules fallback answers, but is not what a caller came for: not ready unless the
    # configuration says the rules alone are acceptable
    model_ok = not served.fallback or state.config.ready_on_fallback
    ok = model_ok and all(results.values())
    body = {"ready": ok, "model": f"{served.name}/{served.version}", "model_loaded": model_ok}
    return JSONResponse({**body, **results}, 200 if ok else 503)


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
async def prometheus(state: State) -> Response:
    served, metrics = state.parts.models.current(), state.metrics
    metrics.model.clear()
    metrics.model.labels(served.name, served.version).set(1)
    metrics.model_version.clear()
    metrics.model_version.labels(served.name).set(version_number(served.version))
    return Response(generate_latest(metrics.registry), media_type="text/plain; version=0.0.4")
