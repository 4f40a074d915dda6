"""The negotiation page's web server (Starlette, served by uvicorn on 127.0.0.1 only).

Routes: `/` the page; `POST /api/plan` re-plans the form's scenario and returns the results
panel (or the French message of each wrong field); `POST /api/enregistrer` saves the scenario
as the TOML `comparer` reads; `POST /api/exporter` writes the comparison (HTML, Excel);
`/fichiers/…` serves back what was saved or exported, and nothing else. Any failure becomes a
French message on the page: the server keeps running.
"""

from __future__ import annotations

import logging
import socket
import threading
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from flux_opt.negotiation.live.fields import shown
from flux_opt.negotiation.live.state import Session, Update
from flux_opt.negotiation.live.view import results_context
from flux_opt.report.html import render
import time

HOST = "127.0.0.1"  # never another interface: the instance's data stay on this machine
log = logging.getLogger(__name__)


def create_app(session: Session) -> Starlette:
    def results_html(update: Update) -> str:
        context = results_context(update.comparison, session.base, session.year)
        return render("negocier_resultats.html", **context, seconds=update.seconds)

    async def page(request: Request) -> Response:
        groups: dict[str, list] = {}
        for field in session.fields:
            groups.setdefault(field.group, []).append((field, shown(field)))
        first = await run_in_threadpool(session.update, {})  # a new page starts from the base, like its form
        info = session.base.parametres.instance
        return HTMLResponse(render(
            "negocier.html", title=f"Négociation du flux — {info.nom}",
            subtitle=f"{info.bailleur} · département {info.departement} · année {info.annee}. Chaque modification "
                     "recalcule le plan ; la base reste affichée à côté. Les fichiers de l'instance ne sont jamais modifiés.",
            groups=groups, sortie=str(session.sortie), results=results_html(first)))

    async def replan(request: Request) -> Response:
        update = await run_in_threadpool(session.update, await _values(request))
        if update.errors:
            return JSONResponse({"erreurs": update.errors})
        return JSONResponse({"html": results_html(update), "secondes": round(update.seconds, 3)})

    async def save(request: Request) -> Response:
        update = await run_in_threadpool(session.update, await _values(request))
        if update.errors:
            return JSONResponse({"erreurs": update.errors})
        path = await run_in_threadpool(session.save)
        return JSONResponse({"message": f"Scénario enregistré : {path}", "lien": _link(session, path)})

    async def export(request: Request) -> Response:
        update = await run_in_threadpool(session.update, await _values(request))
        if update.errors:
            return JSONResponse({"erreurs": update.errors})
        folder, names = await run_in_threadpool(session.export)
        links = {name: _link(session, folder / name) for name in names if name.startswith("comparaison")}
        return JSONResponse({"message": f"Comparaison exportée dans {folder}", "liens": links})

    async def download(request: Request) -> Response:
        path = (session.sortie / request.path_params["chemin"]).resolve()
        if not path.is_file() or not path.is_relative_to(session.sortie):
            return JSONResponse({"message": "fichier introuvable"}, status_code=404)
        return FileResponse(path, filename=path.name)

    async def failure(request: Request, exc: Exception) -> Response:
        log.exception("negocier: %s", request.url.path)
        return JSONResponse({"message": f"Le calcul a échoué ({type(exc).__name__} : {exc}). "
                                        "Le scénario précédent reste affiché."}, status_code=500)

    routes = [Route("/", page), Route("/api/plan", replan, methods=["POST"]),
              Route("/api/enregistrer", save, methods=["POST"]), Route("/api/exporter", export, methods=["POST"]),
              Route("/fichiers/{chemin:path}", download)]
    return Starlette(routes=routes, exception_handlers={Exception: failure})


async def _values(request: Request) -> dict[str, str]:
    try:
        data = await request.json()
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _link(session: Session, path: Path) -> str:
    return "/fichiers/" + path.relative_to(session.sortie).as_posix()


def bind(port: int) -> socket.socket:
    """The listening socket on 127.0.0.1:`port` (0: any free port); OSError when it is taken."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
    except OSError:
        sock.close()
        raise
    return sock


def make_server(session: Session):
    """A uvicorn server for the page (not started: `server.run(sockets=[bind(port)])`)."""
    import uvicorn  # lazy: the server only when the page is served

    return uvicorn.Server(uvicorn.Config(create_app(session), log_level="warning", lifespan="off"))


def start_in_background(session: Session, port: int = 0, timeout: float = 10.0):
    """Start the server in a thread and wait until it listens (tests, embedding): (server, thread, url)."""
    sock = bind(port)
    server = make_server(session)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    if not server.started:
        raise OSError(f"le serveur n'a pas démarré sur {HOST}:{port}")
    return server, thread, f"http://{HOST}:{sock.getsockname()[1]}/"
