"""The staff web console: server-rendered pages in Vietnamese (English available).

Map:
- `router.py`: the routers and `install(app)`; `pages/`: one module per page or group.
- `routing.py`: `ConsoleRoute`, the route class every console router uses (errors as
  pages, session cookie, security headers); `ConsoleStatic` for CSS and JavaScript.
- `session.py`: the signed session cookie and the CSRF token.
- `auth.py`: `ViewerPage`, `EditorPage`, `ApproverPage`, `AdminPage` (like the API's role
  dependencies), `signed_in_user`, `safe_next`, `can`.
- `forms.py`: `FormDep` (a posted form, CSRF checked), `run_form` / `run_form_task` (the
  one way a POST calls services and shows a refusal beside what was typed).
- `render.py`: `render`, `redirect` (with a notice), `NAV`, `NOTICES`.
- `i18n.py`: gettext with Babel, formats (16/03/2024, 17:00, mm:ss); `messages.py`: domain
  errors in words; `labels.py`: words for statuses, topics, roles.
- `templates/` and `static/` (the JavaScript for a template sits beside the CSS, named
  after it); `locale/en/LC_MESSAGES/messages.po`: English.

Pages call the same service functions as the API, never the API over HTTP, and the session
cookie never authorises `/api/v1`.
"""
