"""Sign in, sign out, and the language switch."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from app.accounts import service as accounts
from app.accounts import throttle
from app.console import i18n
from app.console import session as console_session
from app.console.auth import end_session, safe_next, signed_in_user, start_session
from app.console.forms import ConsoleForm, FormDep, csrf_message
from app.console.i18n import N_, _
from app.console.render import redirect, render
from app.console.routing import ConsoleRoute
from app.db import unit_of_work
from app.errors import TooManyRequests

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

CARRY_PREFIX = "carry."


def sign_in_page(
    request: Request,
    *,
    next_path: str = "/",
    error: str | None = None,
    username: str = "",
    expired: bool = False,
    carry: dict[str, str] | None = None,
    carry_action: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    """The sign-in form; `carry` is a form that was posted after the session expired."""
    return render(
        request,
        "signin.html",
        {
            "title": N_("Đăng nhập"),
            "next": safe_next(next_path),
            "error": error,
            "username": username,
            "expired": expired,
            "carry": carry or {},
            "carry_action": carry_action,
        },
        status=status,
    )


def _carried(form: ConsoleForm) -> dict[str, str]:
    return {
        k[len(CARRY_PREFIX) :]: v
        for k, v in form.typed().items()
        if k.startswith(CARRY_PREFIX) and k[len(CARRY_PREFIX) :] != console_session.CSRF_FIELD
    }


@router.post("/signin")
def sign_in(request: Request, form: FormDep) -> Response:
    """Check name and password; start a session; go back to where the person was."""
    username, next_path = form.get("username"), safe_next(form.get("next"))
    carry = _carried(form)
    carry_action = safe_next(form.get("carry_action"), default="") or None

    def again(message: str, status: int) -> Response:
        return sign_in_page(
            request,
            next_path=next_path,
            error=message,
            username=username,
            carry=carry,
            carry_action=carry_action,
            status=status,
        )

    if not form.csrf_ok:
        return again(csrf_message(), 403)
    # The API's throttle, in the same counters: a 429 there is a 429 here.
    address = request.client.host if request.client else "unknown"
    try:
        throttle.check_sign_in(address=address, username=username)
    except TooManyRequests as exc:
        wait = (exc.headers or {}).get("Retry-After", "60")
        refused = again(
            _("Đăng nhập sai quá nhiều lần. Hãy chờ %(seconds)s giây rồi thử lại.")
            % {"seconds": wait},
            429,
        )
        refused.headers["Retry-After"] = wait
        return refused
    with unit_of_work(write=False) as db:
        user = accounts.authenticate(db, username=username, password=form.get("password"))
        if user is None:
            throttle.record_failure(address=address, username=username)
            return again(_("Sai tên đăng nhập hoặc mật khẩu."), 401)
        db.expunge(user)
    start_session(request, user=user)
    signed_in_user(request)  # loads the user for the page below
    if carry and carry_action:
        return render(
            request, "resume.html", {"carry": carry, "action": carry_action, "next": next_path}
        )
    return redirect(next_path)


@router.get("/signout")
def sign_out_link(request: Request, csrf: str = "") -> Response:
    """The "Đăng xuất" link carries the session's token; without it, ask to confirm."""
    if not console_session.csrf_valid(request, csrf):
        signed_in_user(request)
        return render(request, "signout.html", {})
    end_session(request)
    return redirect("/", notice="signed-out")


@router.post("/signout")
def sign_out(request: Request, form: FormDep) -> Response:
    if not form.csrf_ok:
        signed_in_user(request)
        return render(request, "signout.html", {"error": csrf_message()}, status=403)
    end_session(request)
    return redirect("/", notice="signed-out")


@router.get("/language/{lang}")
def choose_language(request: Request, lang: str, next: str = "/") -> Response:
    """Remember the language in a cookie (a year) and go back to the page."""
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(
        i18n.LANG_COOKIE,
        i18n.language_of(lang),
        max_age=365 * 24 * 3600,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response
