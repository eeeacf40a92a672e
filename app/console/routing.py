"""What every console response goes through: language, errors as pages, cookie, headers.

`ConsoleRoute` is the route class of every console router. Around each handler it:
- sets the request's language from the `loaxa_lang` cookie;
- turns `SignInRequired` into the sign-in page (a GET is redirected there with `?next=`;
  a form posted after the session expired is answered with the sign-in page in place,
  carrying what was typed so that it can be sent again after signing in);
- turns `RoleRefused`, domain errors, bad paths and anything unexpected into an error page
  in words, with the right status: no page ever shows a stack trace;
- writes the session cookie when it changed, and the security headers: a strict
  Content-Security-Policy (no inline script or style anywhere in the console).
The JSON API keeps its own handlers: nothing here runs for `/api/v1`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, MutableMapping
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from starlette.routing import Match
from starlette.types import Message

from app.console import i18n
from app.console import session as console_session
from app.console.auth import RoleRefused, SignInRequired, here, sign_in_url
from app.console.i18n import _
from app.console.messages import describe_error
from app.console.render import render
from app.errors import LoaxaError

log = logging.getLogger("loaxa.console")

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; "
    "base-uri 'none'; object-src 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Permissions-Policy": "microphone=(self), camera=(), geolocation=()",
}


def add_security_headers(response: Response, *, private: bool = True) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if private:
        # Pages show a person's work: never from a shared cache or the back button of
        # the next person at the commune office's PC.
        response.headers.setdefault("Cache-Control", "no-store")


def error_page(request: Request, status: int, message: str) -> Response:
    """The error page: what happened in words, and a way back."""
    titles = {
        403: _("Không có quyền"),
        404: _("Không tìm thấy"),
        500: _("Đã có lỗi"),
    }
    title = titles.get(status, _("Chưa làm được"))
    return render(request, "error.html", {"title": title, "message": message}, status=status)


async def _sign_in_again(request: Request, exc: SignInRequired) -> Response:
    if request.method == "GET":
        return RedirectResponse(sign_in_url(exc.next_path, expired=exc.expired), status_code=303)
    # A form sent after the session ended: sign in here, then send it again.
    from app.console.forms import read_form

    carried: dict[str, str] = {}
    try:
        carried = (await read_form(request)).typed()
    except Exception:  # too large or malformed: nothing to carry, the page still shows
        carried = {}
    return render(
        request,
        "signin.html",
        {
            "next": exc.next_path,
            "expired": exc.expired,
            "carry": carried,
            "carry_action": request.url.path,
        },
        status=401,
    )


def _role_message(needed: str) -> str:
    from app.console.labels import ROLES

    return _("Trang hoặc thao tác này dành cho vai trò: %(role)s.") % {"role": _(ROLES[needed])}


def console_route(path: str, method: str) -> tuple[ConsoleRoute, dict[str, Any]] | None:
    """The console route that answers `method` at `path`, and its path parameters."""
    from app.console.router import ROUTERS  # the pages import this module

    scope = {"type": "http", "path": path, "root_path": "", "method": method}
    for router in ROUTERS:
        for route in router.routes:
            if isinstance(route, ConsoleRoute):
                match, child = route.matches(scope)
                if match is Match.FULL:
                    return route, dict(child.get("path_params", {}))
    return None


async def _show_kept(request: Request) -> Response | None:
    """A page with a refused form kept for it (app/console/forms.py) is shown as the form's
    own handler showed the refusal: that handler runs again, on this page's address, with
    the kept form, and its `run_form` answers with `again` instead of acting."""
    from app.console.forms import kept_for

    kept = kept_for(request, here(request))
    if kept is None:
        return None
    found = console_route(kept.action, "POST")
    if found is None:
        return None
    route, path_params = found
    # The same scope (and so the same request.state) with the form's method and parameters;
    # the path stays this page's, so that links and the next refusal come back here.
    scope = {**request.scope, "method": "POST", "path_params": path_params}
    request.state.console_form = kept.form

    async def no_body() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    return await route.plain_handler(Request(scope, no_body))


class ConsoleRoute(APIRoute):
    """The route class of every console router (see the module docstring)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        self.plain_handler = handler  # what a kept refusal runs again (see _show_kept)

        async def console_handler(request: Request) -> Response:
            i18n.set_language(request.cookies.get(i18n.LANG_COOKIE) or "")
            try:
                response = None
                if request.method == "GET":
                    response = await _show_kept(request)
                if response is None:
                    response = await handler(request)
            except SignInRequired as exc:
                response = await _sign_in_again(request, exc)
            except RoleRefused as exc:
                response = error_page(request, 403, _role_message(exc.needed.value))
            except LoaxaError as exc:
                response = error_page(request, exc.status_code, describe_error(exc))
            except RequestValidationError:
                response = error_page(request, 404, _("Địa chỉ này không đúng."))
            except HTTPException as exc:
                response = error_page(request, exc.status_code, str(exc.detail))
            except Exception:
                log.exception("console page %s %s failed", request.method, request.url.path)
                response = error_page(
                    request, 500, _("Đã có lỗi ở máy chủ. Hãy thử lại; nếu vẫn lỗi, báo quản trị.")
                )
            console_session.write_cookie(request, response)
            add_security_headers(response)
            return response

        return console_handler


class ConsoleStatic(StaticFiles):
    """The console's CSS and JavaScript, with the same headers; URLs carry a content hash."""

    async def get_response(self, path: str, scope: MutableMapping[str, Any]) -> Response:
        response = await super().get_response(path, scope)
        add_security_headers(response, private=False)
        if response.status_code == 200:
            response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        return response


class TemplateScripts(ConsoleStatic):
    """The JavaScript kept beside the templates that use it; nothing else from that folder."""

    async def get_response(self, path: str, scope: MutableMapping[str, Any]) -> Response:
        if not path.endswith(".js"):
            return Response(status_code=404)
        return await super().get_response(path, scope)
