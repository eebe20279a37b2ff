"""The web console: server-rendered pages, split by who reads them.

`common` holds what every page shares (templates, the session behind a page,
the CSRF-checked form post, logging in and out); `qa` is for QA staff and
auditors, `supervisors` for supervisors, `agents` for agents and `admin` for
admins. `api.web.app` includes each module's router.
"""
