"""The admin identity shared by the portal and the dashboards: users, roles, logins (:mod:`keliu.accounts.users`)
and the request's user (:mod:`keliu.accounts.web`). It imports no component."""
